/**
 * End-to-end tests of the durable queue through the built CLI: `kubecano
 * deliveries` (list, retry, drop) next to a running `listen`, restarts that
 * keep pending deliveries, and ownership of the state directory. Processes
 * share a state directory through KUBECANO_STATE_DIR; Slack is the local
 * fake (test/fakes/slack.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { FAKE_TOKEN, startSlackFake, type FakeMessage, type SlackFake } from "../fakes/slack.js";
import {
  REPO_ROOT,
  eventually,
  makeTempDir,
  postAlerts,
  removeTempDir,
  runCli,
  startListen,
  stopAllChildren,
  tempDirWith,
  type Listener,
  type ListenOptions,
  type RunResult,
} from "../helpers/cli.js";

vi.setConfig({ testTimeout: 90_000, hookTimeout: 90_000 });

type Body = Record<string, unknown> & { alerts: Record<string, unknown>[] };
const FIRING = (JSON.parse(readFileSync(path.join(REPO_ROOT, "test", "fixtures", "alertmanager", "firing-crashloop.json"), "utf8")) as { body: Body }).body;

let variant = 0;
/** The firing fixture as a new alert with its own fingerprint (fixed length: no fingerprint contains another). */
function uniqueAlert(): { body: Body; fingerprint: string } {
  const n = ++variant;
  const fingerprint = `d${process.pid.toString(16).padStart(7, "0")}${n.toString(16).padStart(8, "0")}`;
  const body = structuredClone(FIRING);
  const alert = body.alerts[0]!;
  (alert["labels"] as Record<string, string>)["pod"] = `api-dlv-${n}`;
  alert["fingerprint"] = fingerprint;
  alert["startsAt"] = new Date(Date.UTC(2026, 0, 2, 0, 0, n)).toISOString();
  return { body, fingerprint };
}

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await makeTempDir("kubecano-e2e-dlv-");
  tempDirs.push(d);
  return d;
}
/** A state directory that does not exist yet. */
async function stateDir(): Promise<string> {
  return path.join(await tempDir(), "state");
}
async function configDir(lines: string[]): Promise<string> {
  const d = await tempDirWith({ "kubecano.config.yaml": `${lines.join("\n")}\n` });
  tempDirs.push(d);
  return d;
}

const perTest: Listener[] = [];
async function listen(args: readonly string[], opts: ListenOptions): Promise<Listener> {
  const l = await startListen(args, opts);
  perTest.push(l);
  return l;
}
const fakes: SlackFake[] = [];
async function slackFake(): Promise<SlackFake> {
  const f = await startSlackFake();
  fakes.push(f);
  return f;
}

afterEach(async () => {
  await Promise.all(perTest.splice(0).map((l) => l.stop("SIGKILL")));
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});
afterAll(async () => {
  await stopAllChildren();
  await Promise.all(tempDirs.splice(0).map(removeTempDir));
});

function deliveries(dir: string, args: readonly string[] = []): Promise<RunResult> {
  return runCli(["deliveries", ...args], { env: { KUBECANO_STATE_DIR: dir } });
}

interface Row {
  seq: number;
  id: string;
  state: "pending" | "done" | "dead";
  destination: string;
  attempts: number;
  lastError?: string;
  fingerprint: string;
  title?: string;
}
async function listJson(dir: string, state: "all" | "pending" | "dead" | "done" = "all"): Promise<Row[]> {
  const r = await deliveries(dir, ["--json", "--state", state]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { stateDir: string; deliveries: Row[] };
  expect(out.stateDir).toBe(dir);
  return out.deliveries;
}

/** Messages the fake stored for an alert (its fingerprint is in the message's footer). */
function messagesOf(slack: SlackFake, fingerprint: string): FakeMessage[] {
  return slack.messages.filter((m) => JSON.stringify([m.blocks, m.attachments]).includes(fingerprint));
}

async function post(l: Listener, body: Body): Promise<void> {
  const r = await postAlerts(l.url, body);
  expect(r.status, r.text).toBe(202);
}

function slackBotConfig(): string[] {
  return [
    "destinations:",
    "  - name: slack-main",
    "    type: slack",
    "    params:",
    "      token: ${SLACK_TOKEN}",
    "      channel: C0ALERTS01",
    "      api_url: ${SLACK_API_URL}",
  ];
}

describe("kubecano deliveries without a queue", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await stateDir();
  });

  it("says there is no queue, exits 0 and does not create the directory", async () => {
    const r = await deliveries(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`no queue in ${dir} yet: nothing has been accepted with this state directory (is --state-dir right?)\n`);
    expect(r.stderr).toBe("");
    expect(existsSync(dir)).toBe(false);
    expect(await listJson(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it("--state-dir wins over KUBECANO_STATE_DIR", async () => {
    const other = await stateDir();
    const r = await runCli(["deliveries", "--state-dir", other], { env: { KUBECANO_STATE_DIR: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`no queue in ${other} yet`);
    expect(existsSync(other)).toBe(false);
  });

  it("retry and drop fail with exit 1 and a hint", async () => {
    for (const args of [["retry", "1"], ["retry", "--all-dead"], ["drop", "1"]]) {
      const r = await deliveries(dir, args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toBe(`kubecano: no queue in ${dir}\n  hint: check --state-dir\n`);
    }
    expect(existsSync(dir)).toBe(false);
  });

  it("retry with neither a delivery nor --all-dead, or with both, is a usage error (exit 2)", async () => {
    const none = await deliveries(dir, ["retry"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe("kubecano: say which delivery to retry\n  hint: give its number from `kubecano deliveries`, or --all-dead\n");
    const both = await deliveries(dir, ["retry", "3", "--all-dead"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^kubecano: give either a delivery or --all-dead, not both\n/);
  });
});

describe("dead letters with a running listen", () => {
  it("lists them with their error, and `retry <#>`, `retry --all-dead` and `drop <#>` act on the running listen's queue", async () => {
    const slack = await slackFake();
    const notFound = slack.platformError("channel_not_found", { method: "chat.postMessage" });
    const dir = await stateDir();
    const cwd = await configDir(slackBotConfig());
    const env = { KUBECANO_STATE_DIR: dir, SLACK_TOKEN: FAKE_TOKEN, SLACK_API_URL: slack.url };
    const l = await listen([], { cwd, env });
    const alerts = [uniqueAlert(), uniqueAlert(), uniqueAlert()];
    for (const a of alerts) await post(l, a.body);
    await eventually(async () => (await listJson(dir, "dead")).length === 3, "three dead letters");

    // The table: one row per dead letter, with Slack's error, and how to act on them.
    const table = await deliveries(dir);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`queue: ${dir}`);
    expect(lines[1]).toMatch(/^#\s+STATE\s+DESTINATION\s+TRIES\s+AGE\s+NEXT\s+ISSUE\s+LAST ERROR$/);
    const rows = lines.filter((x) => x.includes("slack-main"));
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row).toMatch(/^\d+\s+dead\s+slack-main\s+1\s+\S+\s+-\s+.+ Slack chat\.postMessage failed: channel_not_found$/);
    expect(lines).toContain("3 dead");
    expect(table.stdout).toContain("retry with `kubecano deliveries retry <#>` or `--all-dead`; remove with `kubecano deliveries drop <#>`");

    const dead = await listJson(dir, "dead");
    expect(dead.map((d) => d.fingerprint)).toEqual(alerts.map((a) => a.fingerprint));
    for (const d of dead) expect(d).toMatchObject({ state: "dead", destination: "slack-main", attempts: 1, lastError: "Slack chat.postMessage failed: channel_not_found" });
    expect(await listJson(dir, "pending")).toEqual([]);
    const nothingPending = await deliveries(dir, ["--state", "pending"]);
    expect(nothingPending.stdout).toBe(`nothing pending in ${dir}\n`);

    // Unknown delivery: exit 1 with a hint, nothing changed.
    const unknown = await deliveries(dir, ["retry", "999999"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("kubecano: no pending or dead delivery 999999\n  hint: list them with `kubecano deliveries`\n");
    const unknownDrop = await deliveries(dir, ["drop", "no-such-id"]);
    expect(unknownDrop.code).toBe(1);
    expect(unknownDrop.stderr).toBe("kubecano: no pending or dead delivery no-such-id\n  hint: list them with `kubecano deliveries`\n");

    // Slack is fixed: retry the first by its number; the running listen sends it.
    notFound.remove();
    const [first, second, third] = dead as [Row, Row, Row];
    const retried = await deliveries(dir, ["retry", String(first.seq)]);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toBe(`queued delivery ${first.seq} again; a running listen sends it within a second\n`);
    await slack.waitFor(() => messagesOf(slack, first.fingerprint).length === 1, 10_000);

    // Drop the third, then retry all dead: only the second is sent.
    const dropped = await deliveries(dir, ["drop", String(third.seq)]);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toBe(`dropped delivery ${third.seq}\n`);
    expect((await deliveries(dir, ["drop", String(third.seq)])).code).toBe(1);
    const all = await deliveries(dir, ["retry", "--all-dead"]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toBe("queued 1 dead delivery again; a running listen sends them within a second\n");
    await slack.waitFor(() => messagesOf(slack, second.fingerprint).length === 1, 10_000);

    await eventually(async () => (await listJson(dir, "done")).length === 2, "two delivered");
    expect(await listJson(dir)).toEqual([]);
    expect((await deliveries(dir, ["retry", "--all-dead"])).stdout).toBe("no dead deliveries to retry\n");
    expect(await l.stop("SIGTERM")).toBe(0);
    expect(alerts.map((a) => messagesOf(slack, a.fingerprint).length)).toEqual([1, 1, 0]);
  });
});

describe("restarts", () => {
  it("SIGTERM keeps what is not delivered within --shutdown-grace; the next listen delivers each exactly once", async () => {
    const slack = await slackFake();
    const hang = slack.hang({ method: "webhook" });
    const dir = await stateDir();
    const cwd = await configDir([
      "delivery:",
      "  attemptTimeout: 10m",
      "destinations:",
      "  - name: slack-hook",
      "    type: slack",
      "    params:",
      "      webhook_url: ${SLACK_WEBHOOK_URL}",
      "      timeout: 10m",
    ]);
    const env = { KUBECANO_STATE_DIR: dir, SLACK_WEBHOOK_URL: slack.webhookUrl() };
    const first = await listen(["--shutdown-grace", "1s"], { cwd, env });
    const alerts = [uniqueAlert(), uniqueAlert(), uniqueAlert()];
    for (const a of alerts) await post(first, a.body);
    await eventually(() => hang.waiting === 3, "the Slack fake to hold all three posts");
    expect(await first.stop("SIGTERM")).toBe(0);
    const kept = first.logs().find((x) => typeof x.msg === "string" && x.msg.includes("deliveries pending"));
    expect(kept?.msg).toBe("stopped with 3 deliveries pending; they are kept in the state directory and sent on the next start");
    expect(kept).toMatchObject({ left: 3, stateDir: dir });
    // The held posts are never answered nor processed: Slack did not get them.
    hang.remove();
    const pending = await listJson(dir, "pending");
    expect(pending.map((p) => [p.fingerprint, p.attempts])).toEqual(alerts.map((a) => [a.fingerprint, 0]));

    const second = await listen([], { cwd, env });
    await second.waitForLog((x) => x.msg === "resuming 3 deliveries left from the previous run");
    await slack.waitFor(() => alerts.every((a) => messagesOf(slack, a.fingerprint).length === 1), 15_000);
    await eventually(async () => (await listJson(dir, "done")).length === 3, "three delivered");
    expect(await second.stop("SIGTERM")).toBe(0);
    expect(second.logs().some((x) => x.msg === "all deliveries finished")).toBe(true);
    expect(alerts.map((a) => messagesOf(slack, a.fingerprint).length)).toEqual([1, 1, 1]);
    expect(slack.callsTo("webhook").filter((c) => c.outcome === "ok")).toHaveLength(3);
    expect(await listJson(dir)).toEqual([]);
  });

  it("a Slack post cut off by shutdown that Slack did process is found after the restart, not posted twice", async () => {
    const slack = await slackFake();
    const hang = slack.hang({ method: "chat.postMessage" });
    const dir = await stateDir();
    const cwd = await configDir(["delivery:", "  attemptTimeout: 10m", ...slackBotConfig(), "      timeout: 10m"]);
    const env = { KUBECANO_STATE_DIR: dir, SLACK_TOKEN: FAKE_TOKEN, SLACK_API_URL: slack.url };
    const first = await listen(["--shutdown-grace", "1s"], { cwd, env });
    const alerts = [uniqueAlert(), uniqueAlert()];
    for (const a of alerts) await post(first, a.body);
    await eventually(() => hang.waiting === 2, "the Slack fake to hold both posts");
    expect(await first.stop("SIGTERM")).toBe(0);
    // Slack processes the requests kubecano gave up on, as after a real timeout.
    hang.release();
    await slack.waitFor(() => alerts.every((a) => messagesOf(slack, a.fingerprint).length === 1));

    const second = await listen([], { cwd, env });
    await eventually(async () => (await listJson(dir, "done")).length === 2, "both recorded as delivered");
    expect(await second.stop("SIGTERM")).toBe(0);
    expect(alerts.map((a) => messagesOf(slack, a.fingerprint).length)).toEqual([1, 1]);
    expect(slack.callsTo("conversations.history").length).toBeGreaterThanOrEqual(1);
    expect(slack.callsTo("chat.postMessage")).toHaveLength(2);
    expect(second.logs().filter((x) => typeof x.msg === "string" && x.msg.includes("had already reached slack-main"))).toHaveLength(2);
  });
});

describe("the state directory", () => {
  it("a second listen on the same state directory exits 1: it is in use", async () => {
    const dir = await stateDir();
    const first = await listen([], { env: { KUBECANO_STATE_DIR: dir } });
    const second = await runCli(["listen", "--host", "127.0.0.1", "--port", "0"], { env: { KUBECANO_STATE_DIR: dir } });
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      `kubecano: state directory ${dir} is in use by kubecano pid ${first.proc.pid} on ${(await import("node:os")).hostname()}\n  hint: stop the other kubecano, or give this one its own --state-dir\n`,
    );
    // The first is unaffected and, once stopped, frees the directory.
    const r = await postAlerts(first.url, uniqueAlert().body);
    expect(r.status, r.text).toBe(202);
    expect(await first.stop("SIGTERM")).toBe(0);
    const third = await listen([], { env: { KUBECANO_STATE_DIR: dir } });
    expect(await third.stop("SIGTERM")).toBe(0);
  });

  it("--ephemeral keeps the queue in memory and creates no state directory", async () => {
    const dir = await stateDir();
    const l = await listen(["--ephemeral"], { env: { KUBECANO_STATE_DIR: dir } });
    const line = l.logs().find((x) => typeof x.msg === "string" && x.msg.includes("listening"));
    expect(line?.["stateDir"]).toBe("(memory: --ephemeral)");
    await post(l, uniqueAlert().body);
    await l.waitForStdout(/Pod is crash looping|crash ?loop/i);
    expect(await l.stop("SIGTERM")).toBe(0);
    expect(existsSync(dir)).toBe(false);
    const r = await deliveries(dir);
    expect(r.stdout).toContain(`no queue in ${dir} yet`);
  });
});
