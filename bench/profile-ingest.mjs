// Where does `kubecano listen` spend its CPU under webhook load?
// Runs kubecano under `node --cpu-prof`, drives it with the same load as
// bench/ingest.mjs, stops it with SIGTERM (the profile is written on exit) and
// prints self time by function and by module. Not part of `npm run bench`:
//   npm run build && node bench/profile-ingest.mjs [--duration 10] [--keep]
// --ephemeral runs kubecano with its in-memory queue instead of the durable store.
// --keep leaves the .cpuprofile (open it in Chrome DevTools) and prints its path.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { kubecanoVariants } from "./ingest.mjs";
import { REPO_DIR, requireBuild, summariseProfile } from "./lib.mjs";

const { values } = parseArgs({ options: { duration: { type: "string", default: "10" }, keep: { type: "boolean", default: false }, top: { type: "string", default: "25" }, ephemeral: { type: "boolean", default: false } } });
requireBuild();

const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-prof-"));
const configFile = path.join(dir, "kubecano.config.json");
writeFileSync(
  configFile,
  JSON.stringify({
    delivery: { maxBacklog: 1_000_000 },
    destinations: [{ name: "bench-console", type: "console", params: { format: "text", color: "never", output: "stdout" } }],
  }),
);

const store = kubecanoVariants(dir, values.ephemeral)[0];
process.stderr.write(`kubecano with ${store.store}\n`);
const child = spawn(
  process.execPath,
  ["--cpu-prof", "--cpu-prof-dir", dir, "bin/kubecano", "listen", "--host", "127.0.0.1", "--port", "0", "--log-format", "json", "-c", configFile, ...store.args],
  { cwd: REPO_DIR, stdio: ["ignore", "ignore", "pipe"] },
);
const url = await new Promise((resolve, reject) => {
  createInterface({ input: child.stderr }).on("line", (l) => {
    try {
      const a = JSON.parse(l).address;
      if (typeof a === "string") resolve(`http://${a}`);
    } catch {
      // not JSON
    }
  });
  child.once("exit", (c) => reject(new Error(`kubecano exited with ${c}`)));
});

const fixture = JSON.parse(readFileSync(path.join(REPO_DIR, "test/fixtures/alertmanager/firing-crashloop.json"), "utf8"));
fixture.body.alerts[0].fingerprint = "@@FP@@";
const parts = JSON.stringify(fixture.body).split("@@FP@@");
let n = 0;
const r = await autocannon({
  url: `${url}/api/alerts`,
  method: "POST",
  headers: { "Content-Type": "application/json" },
  connections: 50,
  duration: Number(values.duration),
  requests: [{ setupRequest: (req) => ({ ...req, body: parts.join((++n).toString(16).padStart(16, "0")) }) }],
});
process.stderr.write(`load: ${Math.round(r["2xx"] / r.duration)} accepted/s, non-2xx ${r.non2xx}\n`);

await new Promise((resolve) => {
  child.once("exit", resolve);
  child.kill("SIGTERM");
});
const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
if (file === undefined) throw new Error("no .cpuprofile written");
const profile = JSON.parse(readFileSync(path.join(dir, file), "utf8"));

process.stdout.write(summariseProfile(profile, Number(values.top)));

if (values.keep) process.stdout.write(`\nprofile kept: ${path.join(dir, file)}\n`);
else rmSync(dir, { recursive: true, force: true });
