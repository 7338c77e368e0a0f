/**
 * An Issue's life in Slack through the built CLI (`kubecano listen`), with
 * the Kubernetes API fake for enrichment and the Slack fake: a
 * KubePodCrashLooping alert that fires, repeats and resolves leaves exactly
 * one thread whose root shows RESOLVED, with the logs attached in the thread
 * once; a restart on an empty state directory still finds the thread (the
 * history fallback); logs are attached once even when the delivery is retried
 * after an upload failure or comes back in doubt after kill -9; channel
 * templates, the fallback channel and mentions. Counts, never wall-clock times.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { startKubeFake, type KubeFake } from "../fakes/kube.js";
import { FAKE_TOKEN, startSlackFake, type FakeMessage, type SlackFake } from "../fakes/slack.js";
import { eventually, makeTempDir, postAlerts, removeTempDir, request, startListen, stopAllChildren, type Listener } from "../helpers/cli.js";
import { addCrashLoopOom, crashLoopAlert } from "../helpers/cluster-scenarios.js";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 90_000 });

const tempDirs: string[] = [];
const closers: (() => Promise<unknown> | unknown)[] = [];
const listeners: Listener[] = [];

afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.stop("SIGKILL")));
  for (const c of closers.splice(0).reverse()) await c();
});
afterAll(async () => {
  await stopAllChildren();
  await Promise.all(tempDirs.splice(0).map(removeTempDir));
});

const RUN = Date.now().toString(16).slice(-8);
let fpSeq = 0;
const newFingerprint = (): string => `${RUN}${(++fpSeq).toString(16).padStart(8, "0")}`;

async function slackFake(): Promise<SlackFake> {
  const s = await startSlackFake({ rateLimit: { perChannel: { ratePerSec: 1, burst: 5 } } });
  closers.push(() => s.close());
  return s;
}

async function kubeFake(now: Date): Promise<KubeFake> {
  const k = await startKubeFake();
  closers.push(() => k.close());
  addCrashLoopOom(k, now);
  return k;
}

/** A cwd with kubecano.config.yaml and a state directory beside it. */
async function setup(config: string): Promise<{ cwd: string; stateDir: string; base: string }> {
  const base = await makeTempDir("kubecano-slack-e2e-");
  tempDirs.push(base);
  const cwd = path.join(base, "cwd");
  const stateDir = path.join(base, "state");
  await mkdir(cwd);
  await writeFile(path.join(cwd, "kubecano.config.yaml"), config);
  return { cwd, stateDir, base };
}

function slackConfig(slack: SlackFake, params: readonly string[] = [], delivery: readonly string[] = []): string {
  return [
    "clusterName: e2e",
    "delivery:",
    "  dedupWindow: 0",
    "  retry:",
    "    initialDelay: 200ms",
    "    maxDelay: 1s",
    ...delivery,
    "destinations:",
    "  - name: slack",
    "    type: slack",
    "    params:",
    `      token: ${FAKE_TOKEN}`,
    `      api_url: ${slack.url}`,
    ...params.map((p) => `      ${p}`),
    "",
  ].join("\n");
}

async function listen(cwd: string, stateDir: string, args: readonly string[] = []): Promise<Listener> {
  const l = await startListen(args, { cwd, env: { KUBECANO_STATE_DIR: stateDir }, timeoutMs: 60_000 });
  listeners.push(l);
  return l;
}

/** Sum of a metric over its label sets. */
async function metric(l: Listener, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await request(`${l.url}/metrics`)).text;
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

async function drained(l: Listener): Promise<void> {
  await eventually(async () => (await metric(l, "kubecano_queue_depth")) === 0, "the delivery queue to drain", 60_000, 100);
}

function resolvedAlert(body: Record<string, unknown>, endsAt: Date): Record<string, unknown> {
  const alerts = (body["alerts"] as Record<string, unknown>[]).map((a) => ({ ...a, status: "resolved", endsAt: endsAt.toISOString() }));
  return { ...body, status: "resolved", alerts };
}

function ofFingerprint(slack: SlackFake, fp: string): FakeMessage[] {
  return slack.messages.filter((m) => m.metadata?.event_payload["fingerprint"] === fp);
}

function roots(slack: SlackFake, fp: string): FakeMessage[] {
  return ofFingerprint(slack, fp).filter((m) => m.thread_ts === undefined);
}

describe("an Issue's life in Slack", () => {
  it("KubePodCrashLooping fires, repeats and resolves: one thread, its root showing RESOLVED, the logs attached in it once; a re-fire links it", async () => {
    const now = new Date();
    const slack = await slackFake();
    const kube = await kubeFake(now);
    const { cwd, stateDir } = await setup(slackConfig(slack, [`channel: ${slack.channelId}`]));
    const l = await listen(cwd, stateDir, ["--kubeconfig", kube.kubeconfigPath()]);
    const fp = newFingerprint();
    const firing = crashLoopAlert(now, fp);

    expect((await postAlerts(l.url, firing)).status).toBe(202);
    await slack.waitFor(() => roots(slack, fp).length === 1 && slack.files.some((f) => f.completed), 60_000);
    // Alertmanager repeats the notification (repeat_interval): a reply, not a second root.
    expect((await postAlerts(l.url, firing)).status).toBe(202);
    await slack.waitFor(() => ofFingerprint(slack, fp).length === 2, 60_000);
    expect((await postAlerts(l.url, resolvedAlert(firing, new Date(now.getTime() + 10 * 60_000)))).status).toBe(202);
    await slack.waitFor(() => roots(slack, fp)[0]?.edits === 1, 60_000);
    await drained(l);

    const [root] = roots(slack, fp);
    expect(roots(slack, fp)).toHaveLength(1);
    expect(slack.topLevel()).toHaveLength(1);
    // The root shows RESOLVED: header, colour, metadata; it keeps the logs' excerpt from when it fired.
    expect(root!.metadata?.event_payload).toMatchObject({ status: "RESOLVED", fingerprint: fp });
    expect(JSON.stringify(root!.blocks)).toContain("RESOLVED · Pod is crash looping.");
    expect(JSON.stringify(root!.attachments)).toContain("#2EB67D");
    expect(JSON.stringify(root!.attachments)).toContain("java.lang.OutOfMemoryError: Java heap space");
    // The thread: the files of the root (the logs, the events table), "still firing" (with what is new), "resolved".
    const thread = slack.replies(slack.channelId, root!.ts);
    const texts = thread.filter((m) => m.subtype !== "file_share");
    expect(texts.map((m) => (JSON.stringify(m.blocks).includes("Still firing") ? "repeat" : JSON.stringify(m.blocks).includes("Resolved*") ? "resolved" : "other"))).toEqual(["repeat", "resolved"]);
    expect(thread[0]!.subtype).toBe("file_share");
    // The logs: attached once, in the root's first file share, though the repeat fetched them again.
    const logs = slack.files.filter((f) => f.completed && f.filename.endsWith(".log"));
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ thread_ts: root!.ts, channel: slack.channelId });
    expect(thread[0]!.files?.map((f) => f.id)).toContain(logs[0]!.id);
    expect(logs[0]!.bytes!.toString("utf8")).toContain("java.lang.OutOfMemoryError: Java heap space");
    const resolvedReply = texts[1]!;
    expect(resolvedReply.text).toMatch(/^RESOLVED: Pod is crash looping/);
    expect(JSON.stringify(resolvedReply.blocks)).toMatch(/Resolved\* after \d+m at \d\d:\d\d UTC/);
    expect(slack.stats().rateLimited).toBe(0);
    expect(slack.stats().errors).toBe(0);
    expect(await metric(l, "kubecano_deliveries_total", { destination: "slack", outcome: "success" })).toBe(3);

    // It fires again later: a new root that links the previous thread; the old root stays as it is.
    const refire = crashLoopAlert(new Date(now.getTime() + 60 * 60_000), fp);
    expect((await postAlerts(l.url, refire)).status).toBe(202);
    await slack.waitFor(() => roots(slack, fp).length === 2, 60_000);
    await drained(l);
    const newRoot = roots(slack, fp)[1]!;
    expect(newRoot.metadata?.event_payload["status"]).toBe("FIRING");
    expect(JSON.stringify(newRoot.attachments)).toContain(`<${slack.origin}/archives/${slack.channelId}/p${root!.ts.replace(".", "")}|previous occurrence>`);
    expect(slack.message(slack.channelId, root!.ts)!.edits).toBe(1);
  });

  it("a restart on an EMPTY state directory finds the thread in the channel history", async () => {
    const now = new Date();
    const slack = await slackFake();
    // By name: the new state has no channel ID either, so it is looked up (conversations.list).
    const config = slackConfig(slack, ["channel: \"#alerts\""]);
    const first = await setup(config);
    const l1 = await listen(first.cwd, first.stateDir, ["--no-cluster"]);
    const fp = newFingerprint();
    const firing = crashLoopAlert(now, fp);
    await postAlerts(l1.url, firing);
    await slack.waitFor(() => roots(slack, fp).length === 1, 60_000);
    await drained(l1);
    expect(await l1.stop("SIGTERM")).toBe(0);

    const second = await setup(config);
    const l2 = await listen(second.cwd, second.stateDir, ["--no-cluster"]);
    await postAlerts(l2.url, firing);
    await postAlerts(l2.url, resolvedAlert(firing, new Date(now.getTime() + 5 * 60_000)));
    await slack.waitFor(() => roots(slack, fp)[0]?.edits === 1, 60_000);
    await drained(l2);
    expect(roots(slack, fp)).toHaveLength(1);
    const root = roots(slack, fp)[0]!;
    expect(slack.replies("#alerts", root.ts).map((m) => m.metadata?.event_payload["status"])).toEqual(["FIRING", "RESOLVED"]);
    expect(root.metadata?.event_payload["status"]).toBe("RESOLVED");
    expect(slack.callsTo("conversations.list").length).toBeGreaterThanOrEqual(1);
    expect(slack.callsTo("conversations.history").length).toBeGreaterThanOrEqual(1);
  });

  it("logs are attached once though the first share fails, and once though kubecano is killed while sharing", async () => {
    const now = new Date();
    const slack = await slackFake();
    const kube = await kubeFake(now);
    const { cwd, stateDir } = await setup(slackConfig(slack, [`channel: ${slack.channelId}`]));

    // 1. The share answers 500: the delivery is retried; the retry neither posts nor uploads again.
    const l1 = await listen(cwd, stateDir, ["--kubeconfig", kube.kubeconfigPath()]);
    const fp1 = newFingerprint();
    const failing = slack.failNext(1, { status: 500, method: "files.completeUploadExternal" });
    await postAlerts(l1.url, crashLoopAlert(now, fp1));
    await slack.waitFor(() => shares(slack).length === 1, 60_000);
    await drained(l1);
    expect(failing.hits).toBe(1);
    expect(slack.callsTo("files.completeUploadExternal")).toHaveLength(2);
    // Each file uploaded once (the logs and the events table), all shared in the one share that went through.
    expect(slack.callsTo("files.getUploadURLExternal")).toHaveLength(slack.files.length);
    expect(slack.callsTo("upload")).toHaveLength(slack.files.length);
    expect(slack.files.every((f) => f.completed)).toBe(true);
    expect(logFiles(slack)).toHaveLength(1);
    expect(roots(slack, fp1)).toHaveLength(1);

    // 2. kill -9 while Slack holds the share: Slack shares it anyway; the restart finds the delivery in doubt and does not share twice.
    const fp2 = newFingerprint();
    const held = slack.hang({ method: "files.completeUploadExternal", count: 1 });
    await postAlerts(l1.url, crashLoopAlert(now, fp2));
    await eventually(() => held.waiting === 1, "the share held by the fake", 60_000);
    l1.proc.kill("SIGKILL");
    await l1.exited();
    held.release();
    await slack.waitFor(() => shares(slack).length === 2, 30_000);
    const l2 = await listen(cwd, stateDir, ["--kubeconfig", kube.kubeconfigPath()]);
    await drained(l2);
    expect(roots(slack, fp2)).toHaveLength(1);
    const root2 = roots(slack, fp2)[0]!;
    const thread = slack.replies(slack.channelId, root2.ts);
    expect(thread.filter((m) => m.subtype === "file_share")).toHaveLength(1);
    expect(thread.filter((m) => /Could not attach/.test(m.text))).toEqual([]);
    expect(logFiles(slack)).toHaveLength(2);
    expect(shares(slack)).toHaveLength(2);
    expect(await metric(l2, "kubecano_deliveries_total", { destination: "slack", outcome: "success" })).toBe(1);
    expect(l2.logs().filter((x) => /had already reached slack/.test(String(x.msg)))).toHaveLength(1);
  });
});

function shares(slack: SlackFake): FakeMessage[] {
  return slack.messages.filter((m) => m.subtype === "file_share");
}

function logFiles(slack: SlackFake): SlackFake["files"][number][] {
  return slack.files.filter((f) => f.completed && f.filename.endsWith(".log"));
}

describe("routing inside Slack", () => {
  it("channel templates, the fallback channel (a missing label, an unknown channel), and mentions on FIRING roots only", async () => {
    const slack = await slackFake();
    slack.addChannel({ id: "C0PAYMENTS", name: "alerts-payments" });
    slack.addChannel({ id: "C0FALLBACK", name: "alerts-other" });
    const { cwd, stateDir } = await setup(
      slackConfig(slack, ['channel: "#alerts-{{ labels.team }}"', 'fallback_channel: "#alerts-other"', 'mentions: ["<@U0ONCALL1>"]']),
    );
    const l = await listen(cwd, stateDir, ["--no-cluster"]);
    const now = new Date();
    const body = (team: string | undefined, fp: string, annotations: Record<string, string> = {}): Record<string, unknown> => {
      const b = crashLoopAlert(now, fp);
      const a = (b["alerts"] as Record<string, Record<string, unknown>>[])[0]!;
      if (team !== undefined) (a["labels"] as Record<string, string>)["team"] = team;
      Object.assign(a["annotations"] as Record<string, string>, annotations);
      return b;
    };
    const payments = newFingerprint();
    const noTeam = newFingerprint();
    const unknown = newFingerprint();
    await postAlerts(l.url, body("payments", payments, { "kubecano.io/slack-mention": "<!subteam^S0PAYTEAM>" }));
    await postAlerts(l.url, body(undefined, noTeam));
    await postAlerts(l.url, body("ghosts", unknown));
    await slack.waitFor(() => [payments, noTeam, unknown].every((fp) => roots(slack, fp).length === 1), 60_000);
    await postAlerts(l.url, resolvedAlert(body("payments", payments), new Date(now.getTime() + 60_000)));
    await slack.waitFor(() => roots(slack, payments)[0]?.edits === 1, 60_000);
    await drained(l);

    expect(roots(slack, payments)[0]!.channel).toBe("C0PAYMENTS");
    expect(roots(slack, noTeam)[0]!.channel).toBe("C0FALLBACK");
    expect(JSON.stringify(roots(slack, noTeam)[0]!.attachments)).toContain("names labels.team, which this alert does not have");
    expect(roots(slack, unknown)[0]!.channel).toBe("C0FALLBACK");
    expect(JSON.stringify(roots(slack, unknown)[0]!.attachments)).toContain("Slack has no channel");
    expect(l.logs().filter((x) => x.level === "warn" && /posting to #alerts-other instead/.test(String(x.msg)))).toHaveLength(1);

    // Mentions: on the FIRING roots as posted, never on the resolution.
    const postedRoot = slack.callsTo("chat.postMessage").find((c) => c.channel === "C0PAYMENTS" && c.thread_ts === undefined)!;
    expect(String(postedRoot.params["text"])).toMatch(/^<@U0ONCALL1> <!subteam\^S0PAYTEAM> FIRING/);
    const reply = slack.replies("C0PAYMENTS", roots(slack, payments)[0]!.ts);
    expect(reply).toHaveLength(1);
    expect(JSON.stringify(reply[0])).not.toMatch(/<@U0ONCALL1>|<!subteam/);
    expect(JSON.stringify(roots(slack, payments)[0]!.blocks)).not.toContain("<@U0ONCALL1>");
  });
});
