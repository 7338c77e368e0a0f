/**
 * The file destination: one kubecano.issue/v1 line per Issue (valid against
 * the published schema), O_APPEND writes that never interleave or split a
 * line, paths (~, relative to the config file), every error class with its
 * hint, and through the built CLI: test-destination (also as an unprivileged
 * user, for EACCES) and replay reading the file back.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { Block } from "../../src/core/blocks.js";
import { createIssue, type Issue, type IssueStatus } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { fileError, resolvePath } from "../../src/destinations/file/index.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { DeliveryError, type Destination } from "../../src/destinations/types.js";
import { silentLogger } from "../../src/observability/logger.js";
import { parseIssueDocument } from "../../src/sources/issue-document.js";
import { assertBuilt, runCli } from "../helpers/cli.js";
import { validateJsonSchema } from "../helpers/json-schema.js";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SCHEMA = JSON.parse(readFileSync(path.join(ROOT, "docs/webhook-schema.v1.json"), "utf8")) as Record<string, unknown>;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "kubecano-file-"));
  dirs.push(d);
  return d;
}

let n = 0;
function issue(status: IssueStatus = "FIRING", opts: { fingerprint?: string; blocks?: Block[] } = {}): Issue {
  n++;
  return createIssue({
    title: `Pod shop/api-${n} is crash looping`,
    aggregationKey: "KubePodCrashLooping",
    severity: "HIGH",
    status,
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "shop", pod: `api-${n}` }),
    startsAt: "2026-03-01T10:00:00Z",
    ...(status === "RESOLVED" ? { endsAt: "2026-03-01T10:10:00Z" } : {}),
    clusterName: "test",
    fingerprint: opts.fingerprint ?? `fp-${n}`,
    enrichments: opts.blocks !== undefined ? [{ title: "Logs", blocks: opts.blocks }] : [],
  });
}

async function dest(params: Record<string, unknown>, configDir?: string): Promise<Destination> {
  const mod = await DESTINATION_TYPES.file.load();
  return mod.create("audit", DESTINATION_TYPES.file.params.parse(params), { log: silentLogger(), ...(configDir !== undefined ? { configDir } : {}) });
}
const ctx = () => ({ signal: AbortSignal.timeout(10_000), attempt: 1, log: silentLogger() });

function lines(file: string): string[] {
  const text = readFileSync(file, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text.slice(0, -1).split("\n");
}

async function failure(d: Destination, i: Issue): Promise<DeliveryError> {
  const e = await d.send(i, ctx()).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(DeliveryError);
  return e as DeliveryError;
}

describe("file params", () => {
  it("needs a path; mode is append", () => {
    expect(DESTINATION_TYPES.file.params.parse({ path: "x.ndjson" })).toEqual({ path: "x.ndjson", mode: "append" });
    expect(DESTINATION_TYPES.file.params.safeParse({}).success).toBe(false);
    expect(DESTINATION_TYPES.file.params.safeParse({ path: "" }).success).toBe(false);
    expect(DESTINATION_TYPES.file.params.safeParse({ path: "x", mode: "overwrite" }).success).toBe(false);
    expect(DESTINATION_TYPES.file.params.safeParse({ path: "a\0b" }).success).toBe(false);
  });

  it("expands ~ and resolves relative paths against the config file's directory", () => {
    expect(resolvePath("~", "/etc/kubecano", "/home/k")).toBe("/home/k");
    expect(resolvePath("~/issues.ndjson", "/etc/kubecano", "/home/k")).toBe("/home/k/issues.ndjson");
    expect(resolvePath("out/issues.ndjson", "/etc/kubecano", "/home/k")).toBe("/etc/kubecano/out/issues.ndjson");
    expect(resolvePath("/var/log/i.ndjson", "/etc/kubecano", "/home/k")).toBe("/var/log/i.ndjson");
    expect(resolvePath("~other/x", "/etc/kubecano", "/home/k")).toBe("/etc/kubecano/~other/x");
  });
});

describe("file destination", () => {
  it("appends one v1 line per Issue, creating parent directories; a resolution is issue.resolved", async () => {
    const dir = tempDir();
    const d = await dest({ path: "a/b/issues.ndjson" }, dir);
    const firing = issue("FIRING", { fingerprint: "fp-same" });
    const resolved = issue("RESOLVED", { fingerprint: "fp-same" });
    const r = await d.send(firing, ctx());
    await d.send(resolved, ctx());
    const file = path.join(dir, "a/b/issues.ndjson");
    expect(r.detail).toMatch(new RegExp(`^appended to ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(\\d+ bytes\\)$`));
    const got = lines(file).map((l) => JSON.parse(l) as { event: string; issue: { id: string; fingerprint: string } });
    expect(got.map((g) => [g.event, g.issue.id, g.issue.fingerprint])).toEqual([
      ["issue.firing", firing.id, "fp-same"],
      ["issue.resolved", resolved.id, "fp-same"],
    ]);
    for (const g of got) expect(validateJsonSchema(SCHEMA, g, { documented: true })).toEqual([]);
    const back = parseIssueDocument(got[0]);
    expect(back.ok && back.value).toEqual(firing);
  });

  it("writes a huge Issue as one line, and never splits a line among concurrent writers", async () => {
    const dir = tempDir();
    const file = path.join(dir, "issues.ndjson");
    const [a, b] = [await dest({ path: file }), await dest({ path: file })];
    // Lines of ~0.5 MiB with newlines and quotes in the content: far past any pipe or page size.
    const log = (k: number) => `${`line ${k} "quoted" \\ tab\t`.repeat(20_000)}\n`.repeat(2);
    const sends = Array.from({ length: 24 }, (_, k) => (k % 2 === 0 ? a : b).send(issue("FIRING", { fingerprint: `c-${k}`, blocks: [{ type: "file", filename: "x.log", content: log(k) }] }), ctx()));
    await Promise.all(sends);
    const got = lines(file);
    expect(got).toHaveLength(24);
    const fps = got.map((l) => (JSON.parse(l) as { issue: { fingerprint: string; enrichments: { blocks: { content: string }[] }[] } }).issue);
    expect(new Set(fps.map((f) => f.fingerprint)).size).toBe(24);
    for (const f of fps) expect(f.enrichments[0]!.blocks[0]!.content).toBe(log(Number(f.fingerprint.slice(2))));
    // One Issue of 8 MiB: still one line.
    await a.send(issue("FIRING", { fingerprint: "huge", blocks: [{ type: "file", filename: "big.log", content: "x".repeat(8 * 1024 * 1024) }] }), ctx());
    expect(lines(file)).toHaveLength(25);
  });

  it("keeps lines whole with another process appending to the same file at the same time", async () => {
    const dir = tempDir();
    const file = path.join(dir, "shared.ndjson");
    const d = await dest({ path: file });
    // The other writer: a plain node process appending 200 KiB lines with O_APPEND.
    const child = spawn(process.execPath, ["-e", `const fs=require("fs");const fd=fs.openSync(${JSON.stringify(file)},"a");const line=JSON.stringify({other:"y".repeat(200*1024)})+"\\n";for(let i=0;i<60;i++)fs.writeSync(fd,line);`], { stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
    const mine = Array.from({ length: 30 }, (_, k) => d.send(issue("FIRING", { fingerprint: `p-${k}`, blocks: [{ type: "markdown", text: "z".repeat(150 * 1024) }] }), ctx()));
    await Promise.all(mine);
    expect(await exited).toBe(0);
    const got = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(got.filter((g) => "other" in g)).toHaveLength(60);
    expect(got.filter((g) => g["version"] === "kubecano.issue/v1")).toHaveLength(30);
  });

  it("a directory as path, or a file as a parent, is a permanent error with a hint", async () => {
    const dir = tempDir();
    const isDir = await failure(await dest({ path: dir }), issue());
    expect(isDir).toMatchObject({ retryable: false, code: "eisdir" });
    expect(isDir.hint).toMatch(/params\.path is a directory/);
    writeFileSync(path.join(dir, "plain"), "");
    const notDir = await failure(await dest({ path: path.join(dir, "plain", "issues.ndjson") }), issue());
    expect(notDir.retryable).toBe(false);
    expect(["enotdir", "eexist"]).toContain(notDir.code);
    expect(notDir.hint).toMatch(/a parent of params\.path is a file/);
  });

  it.runIf(existsSync("/dev/full"))("a full disk (/dev/full) is retryable", async () => {
    const err = await failure(await dest({ path: "/dev/full" }), issue());
    expect(err).toMatchObject({ retryable: true, code: "enospc" });
    expect(err.hint).toMatch(/disk is full/);
  });

  it.runIf(process.platform === "linux" && process.getuid?.() !== 0)("a file it may not write is a permanent EACCES with a hint", async () => {
    const dir = tempDir();
    const file = path.join(dir, "ro.ndjson");
    writeFileSync(file, "");
    chmodSync(file, 0o400);
    const err = await failure(await dest({ path: file }), issue());
    expect(err).toMatchObject({ retryable: false, code: "eacces" });
    expect(err.hint).toMatch(/may not write/);
  });

  it("classifies every error code: the path's mistakes are permanent, the rest retryable", () => {
    const e = (code: string) => fileError(Object.assign(new Error(code), { code }), "/x", "write to");
    for (const code of ["EACCES", "EPERM", "EROFS", "EISDIR", "ENOTDIR", "EEXIST", "ENOENT", "ELOOP", "ENAMETOOLONG", "EINVAL"]) {
      expect(e(code).retryable, code).toBe(false);
      expect(e(code).hint, code).toBeDefined();
    }
    for (const code of ["ENOSPC", "EDQUOT", "EFBIG", "EMFILE", "ENFILE", "EIO", "EAGAIN", "EBUSY"]) expect(e(code).retryable, code).toBe(true);
    expect(e("ENOSPC").message).toBe("cannot write to /x: ENOSPC");
  });
});

describe("file destination through the built CLI", { timeout: 120_000 }, () => {
  it("test-destination writes under the config file's directory, and replay reads the lines back", async () => {
    assertBuilt();
    const configDir = tempDir();
    const cwd = tempDir();
    writeFileSync(path.join(configDir, "kubecano.config.yaml"), ["destinations:", "  - name: audit", "    type: file", "    params:", "      path: out/issues.ndjson", ""].join("\n"));
    const r = await runCli(["test-destination", "audit", "--config", path.join(configDir, "kubecano.config.yaml")], { cwd });
    expect(r.code).toBe(0);
    const file = path.join(configDir, "out", "issues.ndjson");
    expect(r.stdout).toContain(`appended to ${file}`);
    expect(existsSync(path.join(cwd, "out"))).toBe(false);
    const got = lines(file).map((l) => JSON.parse(l) as { event: string; issue: { aggregationKey: string } });
    expect(got.map((g) => [g.event, g.issue.aggregationKey])).toEqual([["issue.firing", "KubecanoTestNotification"]]);

    // replay takes the file destination's own output: same Issue, workflows not run again.
    const replay = await runCli(["replay", "--dry-run", "--output", "json", "--no-cluster", file], { cwd });
    expect(replay.stderr).toBe("");
    expect(replay.code).toBe(0);
    const out = JSON.parse(replay.stdout) as { issues: { source: string; issue: Issue; workflows: unknown[]; routing: { destinations: string[] } }[] };
    expect(out.issues).toHaveLength(1);
    // One line is one JSON document: named by the file alone.
    expect(out.issues[0]!.source).toBe(file);
    expect(out.issues[0]!.issue.aggregationKey).toBe("KubecanoTestNotification");
    expect(out.issues[0]!.workflows).toEqual([]);
    const explain = await runCli(["replay", "--dry-run", "--explain", "--no-cluster", file], { cwd });
    expect(explain.code).toBe(0);
    expect(explain.stdout).toContain("not run: a recorded kubecano.issue/v1 Issue keeps the enrichments it was recorded with");
  });

  it.runIf(process.platform === "linux" && process.getuid?.() === 0)("an unprivileged kubecano gets EACCES with a hint and exit 1", async () => {
    assertBuilt();
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const locked = path.join(dir, "locked");
    mkdirSync(locked, { mode: 0o700 });
    const cwd = path.join(dir, "cwd");
    mkdirSync(cwd, { mode: 0o777 });
    chmodSync(cwd, 0o777);
    const config = path.join(cwd, "kubecano.config.yaml");
    writeFileSync(config, ["destinations:", "  - name: audit", "    type: file", "    params:", `      path: ${path.join(locked, "issues.ndjson")}`, ""].join("\n"));
    chmodSync(config, 0o644);
    const r = await runCli(["test-destination", "audit"], { cwd, user: { uid: 65534, gid: 65534 }, env: { HOME: cwd, KUBECANO_STATE_DIR: path.join(cwd, "state") } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✖ audit\s+cannot open .*locked\/issues\.ndjson: EACCES/);
    expect(r.stdout).toMatch(/hint: kubecano \(uid 65534\) may not write/);
  });
});
