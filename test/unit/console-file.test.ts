/**
 * The console destination when stdout is a file (or /dev/null): Node's
 * SyncWriteStream, which the destination writes to directly. Run in a child
 * process whose stdout is the file, with the built destination.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, REPO_ROOT } from "../helpers/cli.js";

let dir: string;
beforeAll(() => {
  assertBuilt();
  dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-console-file-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Sends Issues a, b, c in one turn and d in a later one; prints each outcome on stderr. */
const SCRIPT = `
const { create } = await import(${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, "dist/destinations/console/index.js")).href)});
const dest = create("c", { format: "json", color: "never", output: "stdout" }, {});
const issue = (id) => ({ id, fingerprint: id, title: id, status: "FIRING" });
const outcome = (p) => p.then((r) => "ok " + r.detail, (e) => "failed " + e.code + " " + e.message);
const first = await Promise.all(["a", "b", "c"].map((id) => outcome(dest.send(issue(id)))));
const later = await outcome(dest.send(issue("d")));
process.stderr.write(JSON.stringify({ kind: process.stdout.constructor.name, outcomes: [...first, later] }));
`;

/** Runs SCRIPT with stdout on `file`, opened with `flags`. */
function runWithStdout(file: string, flags: "w" | "r"): { kind: string; outcomes: string[] } {
  const fd = openSync(file, flags);
  try {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", SCRIPT], { stdio: ["ignore", fd, "pipe"], encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stderr) as { kind: string; outcomes: string[] };
  } finally {
    closeSync(fd);
  }
}

describe("console destination to a file", () => {
  it("writes every Issue, in order, and reports each printed", () => {
    const file = path.join(dir, "out.jsonl");
    const got = runWithStdout(file, "w");
    expect(got.kind).toBe("SyncWriteStream");
    expect(got.outcomes).toEqual(["ok printed to stdout", "ok printed to stdout", "ok printed to stdout", "ok printed to stdout"]);
    const lines = readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(["a", "b", "c", "d"]);
  });

  it("fails the deliveries, not the process, when the file cannot be written", () => {
    const file = path.join(dir, "read-only.jsonl");
    writeFileSync(file, "");
    // Opened for reading only: every write fails (EBADF).
    const got = runWithStdout(file, "r");
    expect(got.outcomes).toHaveLength(4);
    for (const o of got.outcomes) expect(o).toMatch(/^failed write_failed cannot write to stdout: .*EBADF/);
  });
});
