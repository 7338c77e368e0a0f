// Start-up time: `node bin/kubecano --version` against `node -e 0` measured
// in the same run, interleaved, as wall time from spawn to exit. The ratio is
// what kubecano's own import graph costs on top of starting Node at all.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { REPO_DIR, codeVersion, loadLine, machineLine, median, mdTable, nowStamp, percentile, requireBuild, round } from "./lib.mjs";

export const name = "startup";
export const TARGET_RATIO = 2.5;

const DEFAULTS = { runs: 30, warmups: 3 };

const TARGETS = [
  { key: "node", label: "node -e 0", args: ["-e", "0"] },
  { key: "kubecano", label: "kubecano --version", args: [path.join(REPO_DIR, "bin", "kubecano"), "--version"] },
];

function timeOnce(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: REPO_DIR, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited ${r.status ?? r.signal}: ${String(r.stderr).trim()}`);
  return { ms, stdout: String(r.stdout).trim() };
}

/**
 * What `--version` loads before it can print: the static imports reachable
 * from bin/kubecano (dynamic import() calls are not followed, which is the
 * point: commands load lazily). Local files by path, packages by name.
 */
export function staticImportGraph(entry = path.join(REPO_DIR, "bin", "kubecano")) {
  const files = [];
  const packages = new Set();
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    files.push(path.relative(REPO_DIR, file));
    const src = readFileSync(file, "utf8");
    for (const m of src.matchAll(/^\s*(?:import|export)\s+(?:[^"';]*?\sfrom\s+)?["']([^"']+)["']/gm)) {
      const spec = m[1];
      if (spec.startsWith(".")) visit(path.resolve(path.dirname(file), spec));
      else if (!spec.startsWith("node:")) packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);
    }
  };
  visit(entry);
  return { files, packages: [...packages].sort() };
}

export async function run(opts = {}) {
  const o = { ...DEFAULTS, ...opts };
  const log = o.log ?? ((s) => process.stderr.write(`${s}\n`));
  requireBuild();
  const loadBefore = loadLine();
  const times = { node: [], kubecano: [] };
  let version = "";
  log(`startup: ${o.warmups} warm-ups + ${o.runs} runs of each, interleaved`);
  for (let i = 0; i < o.warmups + o.runs; i++) {
    // Alternate which goes first so neither always runs right after the other.
    const order = i % 2 === 0 ? TARGETS : [...TARGETS].reverse();
    for (const t of order) {
      const r = timeOnce(t.args);
      if (t.key === "kubecano") version = r.stdout;
      if (i >= o.warmups) times[t.key].push(r.ms);
    }
  }
  const stat = (xs) => ({ median: median(xs), p90: percentile(xs, 90), min: Math.min(...xs), max: Math.max(...xs) });
  const n = stat(times.node);
  const k = stat(times.kubecano);
  const ratio = k.median / n.median;
  const ratioP90 = k.p90 / n.p90;
  const pass = ratio <= TARGET_RATIO;
  const headers = ["command", "median ms", "p90 ms", "min ms", "max ms"];
  const rows = [
    ["node -e 0", round(n.median), round(n.p90), round(n.min), round(n.max)],
    [`kubecano --version (${version})`, round(k.median), round(k.p90), round(k.min), round(k.max)],
  ];
  const graph = staticImportGraph();
  const markdown = `## Start-up

- **Date:** ${nowStamp()}
- **Machine:** ${machineLine()}; ${loadBefore} before, ${loadLine()} after
- **Code:** ${codeVersion()}
- **Result:** kubecano --version / node -e 0 = **${round(ratio, 2)}×** by median (${round(ratioP90, 2)}× by p90; target ≤ ${TARGET_RATIO}× by median): **${pass ? "PASS" : "FAIL"}**

${mdTable(headers, rows)}

**Method.** \`bench/startup.mjs\` spawns \`node bin/kubecano --version\` (built dist/) and \`node -e 0\` with spawnSync, ${o.warmups} warm-ups then ${o.runs} timed runs of each, interleaved (the order alternates every round), and times each from spawn to exit with hrtime. Command modules are imported lazily by their actions, so \`--version\` loads only the static import graph of bin/kubecano: ${graph.files.length} local files (${graph.files.map((f) => `\`${f}\``).join(", ")}) and the package${graph.packages.length === 1 ? "" : "s"} ${graph.packages.map((p) => `\`${p}\``).join(", ") || "(none)"}.`;
  return { name, pass, ratio, headers, rows, markdown, times, graph };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await run();
  process.stdout.write(`${r.markdown}\n`);
}
