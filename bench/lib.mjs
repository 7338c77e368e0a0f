// Shared helpers for the benchmarks: statistics, machine facts, and the
// sectioned bench/RESULTS.md that every benchmark updates in place.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { createInterface } from "node:readline";

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = path.dirname(BENCH_DIR);
export const RESULTS_FILE = path.join(BENCH_DIR, "RESULTS.md");

/** Median of numbers (mean of the two middle values for an even count). */
export function median(xs) {
  return percentile(xs, 50);
}

/** Linear-interpolated percentile, p in [0, 100]. */
export function percentile(xs, p) {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export function round(x, digits = 1) {
  if (!Number.isFinite(x)) return String(x);
  return x.toFixed(digits);
}

/** Facts about the machine a result was measured on. */
export function machine() {
  let cpu = os.cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) cpu = m[1].trim();
  } catch {
    // not Linux: os.cpus() is good enough
  }
  return {
    node: process.version,
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export function machineLine() {
  const m = machine();
  return `Node ${m.node} · ${m.cpu} · ${m.cores} cores · ${m.memGiB} GiB · ${m.platform}`;
}

/** The code that was measured: commit, and whether src/ had uncommitted changes. */
export function codeVersion() {
  try {
    const sha = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_DIR, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "bin", "package.json"], { cwd: REPO_DIR, encoding: "utf8" }).trim() !== "";
    return dirty ? `${sha} + uncommitted changes in src/` : sha;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** 1-minute load average at the moment: other work on the machine skews results. */
export function loadLine() {
  const [one] = os.loadavg();
  return `load average ${one.toFixed(2)} on ${os.availableParallelism?.() ?? os.cpus().length} cores`;
}

/** "2026-01-31 12:34 UTC" */
export function nowStamp() {
  return `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

const HEADER = `# kubecano benchmark results

Recorded by \`npm run bench\` (see bench/README.md). Each benchmark owns one
section between \`<!-- bench:NAME -->\` and \`<!-- /bench:NAME -->\`; running one
benchmark (\`npm run bench -- --only NAME\`) replaces only its own section.
Figures are ratios against a baseline measured in the same run, on the
machine named in each section: compare ratios, not absolute numbers, across
machines.
`;

/**
 * Replaces (or appends) the section of one benchmark in RESULTS.md and
 * leaves every other section as it was.
 */
export function writeSection(name, markdown, file = RESULTS_FILE) {
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const block = `${open}\n${markdown.trim()}\n${close}`;
  let text = existsSync(file) ? readFileSync(file, "utf8") : HEADER;
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  if (start >= 0 && end > start) {
    text = text.slice(0, start) + block + text.slice(end + close.length);
  } else {
    text = `${text.replace(/\s*$/, "")}\n\n${block}\n`;
  }
  writeFileSync(file, text.endsWith("\n") ? text : `${text}\n`);
}

/** A GitHub-flavoured Markdown table. */
export function mdTable(headers, rows) {
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...rows.map(line)].join("\n");
}

/** A plain aligned table for the terminal. */
export function textTable(headers, rows) {
  const all = [headers, ...rows].map((r) => r.map(String));
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const fmt = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [fmt(all[0]), widths.map((w) => "-".repeat(w)).join("  "), ...all.slice(1).map(fmt)].join("\n");
}

/** Peak resident set size of a live process in MiB (Linux), or undefined. */
export function peakRssMiB(pid) {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system) a live process has used so far, in ms (Linux), or
 * undefined. Unlike throughput, CPU per request barely moves when other work
 * competes for the cores.
 */
export function cpuTimeMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm) ": state is index 0, utime index 11, stime index 12 (in USER_HZ = 1/100 s).
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Exits the benchmark with a message when the build is missing. */
export function requireBuild() {
  if (!existsSync(path.join(REPO_DIR, "dist", "cli.js"))) {
    throw new Error("dist/cli.js is missing: run `npm run build` first (npm run bench does)");
  }
}

function profileModuleOf(u) {
  if (u === "") return "(native/V8)";
  if (u.startsWith("node:")) return u;
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = u.slice(nm + 13).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const d = u.indexOf("/dist/");
  return d >= 0 ? `kubecano ${u.slice(d + 6)}` : u;
}

/**
 * A V8 .cpuprofile as text: self time by module and by function, and the
 * inclusive time of kubecano's own functions (dist/). Sample times are wall
 * time on the main thread: a thread preempted inside a syscall (writev on a
 * busy 2-core machine) shows up as time in that syscall.
 */
export function summariseProfile(profile, top = 25) {
  const byId = new Map(profile.nodes.map((nd) => [nd.id, nd]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()].filter(([id]) => ["(idle)", "(program)"].includes(byId.get(id).callFrame.functionName)).reduce((a, [, t]) => a + t, 0);
  const keyOf = (cf) => `${cf.functionName || "(anonymous)"}  ${profileModuleOf(cf.url)}:${cf.lineNumber + 1}`;
  const fnTimes = new Map();
  const modTimes = new Map();
  for (const [id, t] of self) {
    const cf = byId.get(id).callFrame;
    fnTimes.set(keyOf(cf), (fnTimes.get(keyOf(cf)) ?? 0) + t);
    const m = ["(garbage collector)", "(idle)", "(program)"].includes(cf.functionName) ? cf.functionName : profileModuleOf(cf.url);
    modTimes.set(m, (modTimes.get(m) ?? 0) + t);
  }
  const parent = new Map();
  for (const nd of profile.nodes) for (const c of nd.children ?? []) parent.set(c, nd.id);
  const inclusive = new Map();
  for (const [id, t] of self) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      if (!cf.url.includes("/dist/")) continue;
      const key = keyOf(cf);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + t);
    }
  }
  const pct = (t) => `${((100 * t) / total).toFixed(1)}%`;
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  const table = (title, col, m) => `${title}\n${textTable(["", col, "%"], sorted(m).map(([k, t]) => [k, `${(t / 1000).toFixed(0)} ms`, pct(t)]))}\n`;
  return [
    `profile: ${(total / 1e6).toFixed(1)} s sampled, ${pct(idle)} idle/program\n`,
    table("self time by module", "self", modTimes),
    table("self time by function", "self", fnTimes),
    table("inclusive time of kubecano functions", "total", inclusive),
  ].join("\n");
}

/**
 * Starts the built `kubecano listen` on 127.0.0.1 and an ephemeral port, its
 * logs as JSON on stderr (the last 30 lines kept for errors), stdout to
 * /dev/null. The environment is the benchmark's without anything that
 * would point kubecano at a config, cluster or log level of the machine's;
 * `env` adds to it. Resolves once kubecano logs its address, with `base`
 * (http://127.0.0.1:PORT), the child, the ms from spawn to listening, and
 * stop() (SIGTERM, resolving at exit).
 */
export function spawnListen(args, { cwd = REPO_DIR, env = {}, timeoutMs = 30_000 } = {}) {
  const childEnv = { ...process.env, NO_COLOR: "1" };
  for (const k of ["CI", "KUBECANO_CONFIG", "KUBECANO_LOG_LEVEL", "KUBECANO_STATE_DIR", "KUBECONFIG", "NODE_OPTIONS", "FORCE_COLOR"]) delete childEnv[k];
  Object.assign(childEnv, env);
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(REPO_DIR, "bin", "kubecano"), "listen", "--host", "127.0.0.1", "--port", "0", "--log-format", "json", ...args], { cwd, env: childEnv, stdio: ["ignore", "ignore", "pipe"] });
  const tail = [];
  const stop = () => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : (child.once("exit", () => resolve()), child.kill("SIGTERM"))));
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (why) => {
      if (done) return;
      done = true;
      child.kill("SIGKILL");
      reject(new Error(`kubecano listen ${why}:\n${tail.join("\n")}`));
    };
    const timer = setTimeout(() => fail(`did not start within ${timeoutMs / 1000} s`), timeoutMs);
    createInterface({ input: child.stderr }).on("line", (line) => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
      if (done) return;
      const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(line);
      if (m === null) return;
      done = true;
      clearTimeout(timer);
      resolve({ child, base: `http://127.0.0.1:${m[1]}`, t0, listeningMs: performance.now() - t0, tail, stop });
    });
    child.once("exit", (code, signal) => fail(`exited (${code ?? signal}) before listening`));
  });
}
