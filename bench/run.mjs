// Runs kubecano's benchmarks, prints a table per benchmark and records each
// one's section in bench/RESULTS.md (other sections are kept).
//   npm run bench                          all benchmarks (builds first)
//   npm run bench -- --only ingest         one benchmark (or --only ingest,startup)
//   npm run bench -- --quick --no-write    short runs, results not recorded
// Exits 1 when a benchmark could not run; a missed target is reported as
// FAIL in the table and in RESULTS.md but is not an error exit, since
// timings on a shared machine are not a gate.
import { parseArgs } from "node:util";
import path from "node:path";
import { REPO_DIR, RESULTS_FILE, textTable, writeSection } from "./lib.mjs";
import * as enrich from "./enrich.mjs";
import * as ingest from "./ingest.mjs";
import * as startup from "./startup.mjs";
import * as watch from "./watch.mjs";
import * as slackStorm from "./slack-storm.mjs";
import * as tui from "./tui.mjs";
import * as recovery from "./recovery.mjs";

const BENCHMARKS = { startup, ingest, recovery, enrich, watch, "slack-storm": slackStorm, tui };

const { values } = parseArgs({
  options: {
    only: { type: "string", multiple: true },
    quick: { type: "boolean", default: false },
    write: { type: "boolean", default: true },
    "no-write": { type: "boolean", default: false },
    ephemeral: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  process.stdout.write(`usage: node bench/run.mjs [--only ${Object.keys(BENCHMARKS).join("|")}] [--quick] [--no-write] [--ephemeral]
  --only NAME   run only these benchmarks (repeat, or comma-separate)
  --quick       short runs to check that the benchmarks work (results are not representative)
  --no-write    do not update bench/RESULTS.md
  --ephemeral   ingest: run kubecano with its in-memory queue instead of the durable store
`);
} else {
  const names = (values.only ?? Object.keys(BENCHMARKS)).flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(n in BENCHMARKS));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(", ")}: use ${Object.keys(BENCHMARKS).join(", ")}\n`);
    process.exitCode = 2;
  } else {
    const write = values.write && !values["no-write"] && !values.quick;
    const quick = {
      ingest: { duration: 3, warmup: 1, rounds: 1, stages: false },
      startup: { runs: 5, warmups: 1 },
      enrich: { alerts: 60, warmup: 10, e2e: 15, e2eWarmup: 3 },
      watch: { pods: 1_000, events: 5_000, rounds: 1 },
      "slack-storm": { quiet: "5s" },
      tui: { seconds: 10 },
      recovery: { deliveries: 2_000 },
    };
    const summary = [];
    for (const n of names) {
      const opts = { ...(values.quick ? quick[n] : {}), ...(n === "ingest" ? { ephemeral: values.ephemeral } : {}) };
      try {
        const r = await BENCHMARKS[n].run(opts);
        process.stdout.write(`\n${n}\n${textTable(r.headers, r.rows)}\nratio ${r.ratio.toFixed(2)}: ${r.pass ? "PASS" : "FAIL"}\n`);
        if (write) writeSection(n, r.markdown);
        summary.push([n, r.ratio.toFixed(2), r.pass ? "PASS" : "FAIL"]);
      } catch (e) {
        process.stderr.write(`bench: ${n} could not run: ${e?.stack ?? e}\n`);
        summary.push([n, "-", "ERROR"]);
        process.exitCode = 1;
      }
    }
    process.stdout.write(`\n${textTable(["benchmark", "ratio", "target"], summary)}\n`);
    if (write) process.stdout.write(`recorded in ${path.relative(REPO_DIR, RESULTS_FILE)}\n`);
  }
}
