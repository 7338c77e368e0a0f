/**
 * Slack under load and failure, through the built CLI (`kubecano listen`)
 * against the Slack fake with Slack's per-channel rate limit (1 message/s,
 * bursts of 5): a 500-alert storm into one channel loses nothing and never
 * meets a 429, in a bounded number of messages, while a lone alert for
 * another channel goes out before the storm's backlog drains; oversized
 * alerts are accepted with what did not fit in files; each permanent Slack
 * error becomes a dead letter with its hint, logged once. Counts and order,
 * never wall-clock times.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { checkBlockKit, FAKE_TOKEN, startSlackFake, type FakeMessage, type SlackFake } from "../fakes/slack.js";
import { eventually, makeTempDir, postAlerts, removeTempDir, request, runCli, startListen, stopAllChildren, type Listener } from "../helpers/cli.js";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 90_000 });

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

async function setup(config: string): Promise<{ cwd: string; env: Record<string, string> }> {
  const base = await makeTempDir("kubecano-slack-storm-");
  tempDirs.push(base);
  const cwd = path.join(base, "cwd");
  await mkdir(cwd);
  await writeFile(path.join(cwd, "kubecano.config.yaml"), config);
  return { cwd, env: { KUBECANO_STATE_DIR: path.join(base, "state") } };
}

async function listen(cwd: string, env: Record<string, string>): Promise<Listener> {
  const l = await startListen(["--no-cluster"], { cwd, env, timeoutMs: 60_000 });
  listeners.push(l);
  return l;
}

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

function alert(n: number, labels: Record<string, string> = {}, annotations: Record<string, string> = {}): Record<string, unknown> {
  return {
    status: "firing",
    labels: { alertname: n % 2 === 0 ? "KubePodCrashLooping" : "KubePodNotReady", namespace: `ns-${n % 3}`, pod: `pod-${RUN}-${n}`, severity: n % 4 === 0 ? "critical" : "warning", ...labels },
    annotations: { summary: `Storm alert ${RUN} #${n}`, ...annotations },
    startsAt: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(),
    endsAt: "0001-01-01T00:00:00Z",
    generatorURL: "",
    fingerprint: `${RUN}${n.toString(16).padStart(8, "0")}`,
  };
}

function webhook(alerts: readonly Record<string, unknown>[]): Record<string, unknown> {
  return { version: "4", groupKey: `{}:{run="${RUN}"}`, truncatedAlerts: 0, status: "firing", receiver: "kubecano", groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: "http://alertmanager.example:9093", alerts };
}

function fpOf(a: Record<string, unknown>): string {
  return a["fingerprint"] as string;
}

/** Fingerprints in the storm list files the fake holds (last column; the first line is the header). */
function listed(slack: SlackFake): Set<string> {
  const out = new Set<string>();
  for (const f of slack.files.filter((x) => x.completed && x.filename.startsWith("storm-"))) {
    for (const line of (f.bytes?.toString("utf8") ?? "").trimEnd().split("\n").slice(1)) out.add(line.trim().split(/\s+/).pop()!);
  }
  return out;
}

function ownMessages(slack: SlackFake): Set<string> {
  return new Set(slack.messages.filter((m) => m.metadata?.event_type === "kubecano_issue").map((m) => String(m.metadata!.event_payload["fingerprint"])));
}

describe("an alert storm", () => {
  it("500 alerts into one channel limited to 1 message/s: nothing lost, no 429, a bounded number of messages; another channel is not held up", async () => {
    const slack = await startSlackFake({ rateLimit: { perChannel: { ratePerSec: 1, burst: 5 } } });
    closers.push(() => slack.close());
    slack.addChannel({ id: "C0SECOND01", name: "second" });
    const { cwd, env } = await setup(
      [
        "delivery:",
        "  dedupWindow: 0",
        "destinations:",
        "  - name: slack",
        "    type: slack",
        "    params:",
        `      token: ${FAKE_TOKEN}`,
        `      api_url: ${slack.url}`,
        '      channel: "#{{ labels.chan }}"',
        '      fallback_channel: "#alerts"',
        "      storm: { threshold: 20, update_interval: 1s, quiet: 3s }",
        "",
      ].join("\n"),
    );
    const l = await listen(cwd, env);
    const alerts = Array.from({ length: 500 }, (_, n) => alert(n, { chan: "alerts" }));
    for (let i = 0; i < alerts.length; i += 100) expect((await postAlerts(l.url, webhook(alerts.slice(i, i + 100)))).status).toBe(202);

    // One alert for #second while #alerts has hundreds waiting: it goes out before #alerts has drained.
    const lone = alert(10_000, { chan: "second" });
    let stormOverWhenPosted: boolean | undefined;
    const posted = slack.waitFor(() => {
      if (slack.topLevel("#second").length === 0) return false;
      stormOverWhenPosted ??= slack.messages.some((m) => /^:checkered_flag: Storm over: /.test(m.text));
      return true;
    }, 60_000);
    expect((await postAlerts(l.url, webhook([lone]))).status).toBe(202);
    await posted;
    expect(stormOverWhenPosted).toBe(false);

    await slack.waitFor(() => slack.messages.some((m) => /^:checkered_flag: Storm over: /.test(m.text)), 120_000);
    await eventually(async () => (await metric(l, "kubecano_queue_depth")) === 0, "the queue to drain", 60_000, 200);

    expect(slack.stats().rateLimited).toBe(0);
    expect(await metric(l, "kubecano_deliveries_total", { destination: "slack", outcome: "success" })).toBe(501);
    expect(await metric(l, "kubecano_deliveries_total", { destination: "slack", outcome: "retry" })).toBe(0);
    expect(await metric(l, "kubecano_deliveries_total", { destination: "slack", outcome: "failed" })).toBe(0);
    // Every alert is represented: its own message or a line of the list in the summary's thread.
    const own = ownMessages(slack);
    const inList = listed(slack);
    expect(alerts.filter((a) => !own.has(fpOf(a)) && !inList.has(fpOf(a))).map(fpOf)).toEqual([]);
    expect(own.has(fpOf(lone))).toBe(true);
    // A bounded number of messages in #alerts: a few on their own, one summary, its list and "storm over".
    const inAlerts = slack.messages.filter((m) => m.channel === "C0ALERTS01");
    expect(inAlerts.length).toBeLessThanOrEqual(20 + 5);
    const summaries = slack.messages.filter((m) => m.metadata?.event_type === "kubecano_storm");
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.edits).toBeGreaterThanOrEqual(1);
    expect(checkBlockKit(summaries[0]!.blocks, summaries[0]!.attachments).errors).toEqual([]);
    expect(summaries[0]!.text).toMatch(/^Alert storm over: \d+ alerts/);
    expect(l.logs().filter((x) => x.level === "warn" && /alert storm/.test(String(x.msg)))).toHaveLength(1);
  });
});

describe("oversized alerts", () => {
  it("a 10,000-character description and 200 labels: accepted within Slack's limits, the rest in files in the thread", async () => {
    const slack = await startSlackFake();
    closers.push(() => slack.close());
    const { cwd, env } = await setup(["destinations:", "  - name: slack", "    type: slack", "    params:", `      token: ${FAKE_TOKEN}`, `      api_url: ${slack.url}`, `      channel: ${slack.channelId}`, ""].join("\n"));
    const l = await listen(cwd, env);
    const labels = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`label_${String(i).padStart(3, "0")}`, `value <${i}> & more`]));
    const description = `${"A long description with <b>markup</b> & entities. ".repeat(200).slice(0, 10_000)}`;
    const a = alert(1, labels, { description });
    expect((await postAlerts(l.url, webhook([a]))).status).toBe(202);
    await slack.waitFor(() => slack.messages.some((m) => m.subtype === "file_share"), 60_000);
    expect(slack.stats().errors).toBe(0);
    const root: FakeMessage = slack.topLevel()[0]!;
    expect(root.metadata?.event_payload["fingerprint"]).toBe(fpOf(a));
    expect(checkBlockKit(root.blocks, root.attachments).errors).toEqual([]);
    const files = Object.fromEntries(slack.files.filter((f) => f.completed).map((f) => [f.filename, f.bytes!.toString("utf8")]));
    expect(Object.keys(files).sort()).toEqual(["description.txt", "labels.txt"]);
    expect(files["description.txt"]).toBe(description);
    // 200 labels of the alert plus those kubecano adds (alertname, namespace, pod, severity).
    expect(files["labels.txt"]!.trimEnd().split("\n").length).toBe(204);
    expect(files["labels.txt"]).toContain("label_199=value <199> & more");
    const text = JSON.stringify(root.attachments);
    expect(text).toContain("the full description is in description.txt in the thread");
    expect(text).toMatch(/more labels: all of them are in labels\.txt in the thread/);
  });
});

describe("permanent Slack errors", () => {
  it("channel_not_found, not_in_channel, is_archived, invalid_auth, token_revoked, missing_scope: dead letters with their hints, logged once each", async () => {
    const tokens = { [FAKE_TOKEN]: {}, "xoxb-revoked-e2e": { revoked: true }, "xoxb-noscope-e2e": { scopes: ["channels:read"] } };
    const slack = await startSlackFake({ tokens });
    closers.push(() => slack.close());
    const dest = (name: string, token: string, channel: string): string[] => [`  - name: ${name}`, "    type: slack", "    params:", `      token: ${token}`, `      api_url: ${slack.url}`, `      channel: "${channel}"`];
    const cases = [
      ["nochannel", FAKE_TOKEN, "#nope", "channel_not_found", /params\.channel/],
      ["outside", FAKE_TOKEN, "#outside", "not_in_channel", /invite the bot/],
      ["archived", FAKE_TOKEN, "#archived", "is_archived", /archived/],
      ["badtoken", "xoxb-unknown-e2e", "C0ALERTS01", "invalid_auth", /params\.token/],
      ["revoked", "xoxb-revoked-e2e", "C0ALERTS01", "token_revoked", /params\.token/],
      ["noscope", "xoxb-noscope-e2e", "C0ALERTS01", "missing_scope", /chat:write/],
    ] as const;
    const { cwd, env } = await setup(["destinations:", ...cases.flatMap(([name, token, channel]) => dest(name, token, channel)), ""].join("\n"));
    const l = await listen(cwd, env);
    expect((await postAlerts(l.url, webhook([alert(1), alert(2)]))).status).toBe(202);
    await eventually(async () => (await metric(l, "kubecano_deliveries_total", { outcome: "failed" })) === cases.length * 2, "every delivery to fail", 60_000, 200);
    expect(await metric(l, "kubecano_deliveries_total", { outcome: "retry" })).toBe(0);

    const out = await runCli(["deliveries", "--state", "dead", "--json"], { cwd, env });
    expect(out.code, out.stderr).toBe(0);
    const dead = (JSON.parse(out.stdout) as { deliveries: { destination: string; state: string; attempts: number; lastError: string }[] }).deliveries;
    expect(dead).toHaveLength(cases.length * 2);
    for (const [name, , , code, hint] of cases) {
      const mine = dead.filter((d) => d.destination === name);
      expect(mine.map((d) => [d.state, d.attempts])).toEqual([
        ["dead", 1],
        ["dead", 1],
      ]);
      for (const d of mine) expect(d.lastError).toBe(`Slack chat.postMessage failed: ${code}`);
      // Logged once per destination and code, with the hint (the second alert's failure is not logged again).
      const lines = l.logs().filter((x) => x.level === "error" && x["code"] === code && x["destination"] === name);
      expect(lines, name).toHaveLength(1);
      expect(String(lines[0]!["hint"])).toMatch(hint);
    }
    expect(slack.messages).toHaveLength(0);
    expect(l.stderr()).not.toContain("xoxb-revoked-e2e");
    expect(l.stderr()).not.toContain("xoxb-noscope-e2e");
  });
});
