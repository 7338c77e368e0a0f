/**
 * A real Alertmanager (Debian's prometheus-alertmanager) posts webhooks to the
 * built `kubecano listen`. Each test starts its own Alertmanager and kubecano
 * on their own ports with their own temp dirs, so this file runs in parallel
 * with any other. Without Alertmanager the tests are skipped locally and fail
 * in CI (CI=true) with the install hint.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { checkBlockKit, startSlackFake, type SlackFake } from "../fakes/slack.js";
import { alertmanagerGate, startAlertmanager, stopAllAlertmanagers, type AddedAlert, type Alertmanager, type TestAlert } from "../helpers/alertmanager.js";
import { eventually, makeTempDir, removeTempDir, request, startListen, stopAllChildren, tempDirWith, type Listener } from "../helpers/cli.js";

const gate = alertmanagerGate();
if (gate.skip) console.warn(`[e2e] skipping the Alertmanager tests: ${gate.reason}`);

/** What Alertmanager puts in webhooks as externalURL (a name no one resolves: links only). */
const EXTERNAL_URL = "http://alertmanager.e2e.test:9093";

const CRASHLOOP: TestAlert = {
  labels: { alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f", container: "api", severity: "critical" },
  annotations: {
    summary: "Pod shop/api-7d9f is crash looping",
    description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
    runbook_url: "https://runbooks.example.test/kubepodcrashlooping",
  },
};

/** Alertmanager's silence link for a label set, computed here independently of kubecano's code. */
function expectedSilenceUrl(labels: Readonly<Record<string, string>>): string {
  const matchers = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`)
    .join(",");
  return `${EXTERNAL_URL}/#/silences/new?filter=${encodeURIComponent(`{${matchers}}`)}`;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await stopAllAlertmanagers();
  await stopAllChildren();
});
afterAll(async () => {
  await stopAllAlertmanagers();
  await stopAllChildren();
});

async function tempCwd(files: Record<string, string> = {}): Promise<string> {
  const dir = Object.keys(files).length > 0 ? await tempDirWith(files) : await makeTempDir();
  cleanups.push(() => removeTempDir(dir));
  return dir;
}

async function alertmanagerFor(l: Listener, bearerToken?: string): Promise<Alertmanager> {
  return startAlertmanager({ webhook: { url: `${l.url}/api/alerts`, ...(bearerToken !== undefined ? { bearerToken } : {}) }, externalUrl: EXTERNAL_URL });
}

/** The fingerprint Alertmanager gave an alert it holds. */
async function fingerprintOf(am: Alertmanager, alert: AddedAlert): Promise<string> {
  return eventually(async () => (await am.alerts()).find((a) => a.labels["alertname"] === alert.labels.alertname && a.labels["pod"] === alert.labels["pod"])?.fingerprint, "Alertmanager to list the alert");
}

async function metric(l: Listener, name: string, labels: Record<string, string>): Promise<number> {
  const text = (await request(`${l.url}/metrics`)).text;
  const line = text.split("\n").find((x) => x.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => x.includes(`${k}="${v}"`)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe.skipIf(gate.skip)(`kubecano listen behind a real Alertmanager${gate.skip ? ` (skipped: ${gate.reason})` : ""}`, { timeout: 120_000 }, () => {
  it("prints a firing alert with title, severity and silence link, then its resolution", async () => {
    const l = await startListen([], { cwd: await tempCwd() });
    const am = await alertmanagerFor(l);

    const added = await am.addAlert(CRASHLOOP);
    const fingerprint = await fingerprintOf(am, added);
    const firing = await l.waitForStdout(/FIRING.*Pod shop\/api-7d9f is crash looping/, 60_000);
    expect(firing).toMatch(/● FIRING\s+HIGH\s+Pod shop\/api-7d9f is crash looping/);
    expect(firing).toContain("Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).");
    expect(firing).toContain("shop/pod/api-7d9f");
    expect(firing).toContain("container api");
    expect(firing).toMatch(/Runbook\s+https:\/\/runbooks\.example\.test\/kubepodcrashlooping/);
    expect(firing).toMatch(new RegExp(`Silence\\s+${escapeRe(expectedSilenceUrl(CRASHLOOP.labels))}`));
    expect(firing).toContain(`fingerprint ${fingerprint}`);

    await am.resolveAlert(added);
    const resolved = await l.waitForStdout(/RESOLVED.*Pod shop\/api-7d9f is crash looping/, 60_000);
    const tail = resolved.slice(resolved.lastIndexOf("✔ RESOLVED"));
    expect(tail).toMatch(/✔ RESOLVED\s+HIGH\s+Pod shop\/api-7d9f is crash looping/);
    expect(tail).toContain(`fingerprint ${fingerprint}`);
    expect(tail).toMatch(/resolved after/);

    expect(await metric(l, "kubecano_alerts_received_total", { source: "alertmanager" })).toBeGreaterThanOrEqual(2);
    expect(await l.stop("SIGTERM")).toBe(0);
  });

  it("with bearer auth on both sides: delivered; with a wrong token: refused (401) and not printed", async () => {
    const TOKEN = "e2e-am-bearer-token-0123456789abcdef";
    const l = await startListen([], { cwd: await tempCwd({ "kubecano.config.yaml": `server:\n  auth:\n    bearerToken: ${TOKEN}\n` }) });

    const am = await alertmanagerFor(l, TOKEN);
    const added = await am.addAlert(CRASHLOOP);
    await l.waitForStdout(/FIRING.*Pod shop\/api-7d9f is crash looping/, 60_000);
    await am.resolveAlert(added);
    await l.waitForStdout(/RESOLVED.*Pod shop\/api-7d9f is crash looping/, 60_000);
    expect(await metric(l, "kubecano_rejected_payloads_total", { reason: "auth" })).toBe(0);

    // The control: an Alertmanager with the wrong token is refused, so the test above can fail.
    const intruder = await alertmanagerFor(l, `${TOKEN}-wrong`);
    await intruder.addAlert({ labels: { alertname: "IntruderAlert", namespace: "shop", severity: "critical" }, annotations: { summary: "should never be printed" } });
    await eventually(async () => (await metric(l, "kubecano_rejected_payloads_total", { reason: "auth" })) >= 1, "kubecano to refuse the wrong token", 60_000);
    expect(l.stdout()).not.toContain("should never be printed");
    expect(l.stderr()).not.toContain(TOKEN);
  });

  it("delivers the firing and resolved notifications to Slack (bot token) with the Alertmanager fingerprint in metadata", async () => {
    const slack: SlackFake = await startSlackFake();
    cleanups.push(() => slack.close());
    const cwd = await tempCwd({
      "kubecano.config.yaml": [
        "clusterName: e2e",
        "destinations:",
        "  - name: slack-alerts",
        "    type: slack",
        "    params:",
        "      token: ${SLACK_BOT_TOKEN}",
        `      channel: ${slack.channelId}`,
        `      api_url: ${slack.url}`,
        "",
      ].join("\n"),
    });
    const l = await startListen([], { cwd, env: { SLACK_BOT_TOKEN: slack.token } });
    const am = await alertmanagerFor(l);

    const posted = (status: string) => () =>
      slack
        .callsTo("chat.postMessage")
        .some((c) => c.outcome === "ok" && metadataOf(c.params)?.event_payload["status"] === status);

    const added = await am.addAlert(CRASHLOOP);
    const fingerprint = await fingerprintOf(am, added);
    await slack.waitFor(posted("FIRING"), 60_000);
    await am.resolveAlert(added);
    await slack.waitFor(posted("RESOLVED"), 60_000);

    const calls = slack.callsTo("chat.postMessage");
    // Every call was accepted: none failed the fake's Block Kit and kubecano limit checks.
    expect(calls.map((c) => `${c.outcome}${c.error !== undefined ? ` ${c.error}` : ""}`)).toEqual(calls.map(() => "ok"));
    for (const status of ["FIRING", "RESOLVED"]) {
      const call = calls.find((c) => metadataOf(c.params)?.event_payload["status"] === status)!;
      expect(call.token).toBe(slack.token);
      expect(call.channel).toBe(slack.channelId);
      expect(metadataOf(call.params)?.event_payload["fingerprint"]).toBe(fingerprint);
      expect(String(call.params["text"])).toContain("Pod shop/api-7d9f is crash looping");
    }

    // One thread: the root, edited to show RESOLVED once the reply said so.
    await slack.waitFor(() => slack.messages.some((m) => m.thread_ts === undefined && m.edits > 0 && m.metadata?.event_payload["fingerprint"] === fingerprint), 60_000);
    const stored = slack.messages.filter((m) => m.metadata?.event_payload["fingerprint"] === fingerprint && m.thread_ts === undefined);
    expect(stored.map((m) => m.metadata?.event_payload["status"])).toEqual(["RESOLVED"]);
    expect(slack.replies(slack.channelId, stored[0]!.ts).map((m) => m.metadata?.event_payload["status"])).toEqual(["RESOLVED"]);
    // What the channel holds passes Slack's limits, checked again here independently.
    for (const m of stored) {
      expect(m.text.length).toBeGreaterThan(0);
      expect(m.text.length).toBeLessThanOrEqual(40_000);
      const check = checkBlockKit(m.blocks, m.attachments);
      expect(check.errors).toEqual([]);
      expect(check.tooLong).toBe(false);
      expect(JSON.stringify([m.blocks, m.attachments])).toContain(escapeJson(expectedSilenceUrl(CRASHLOOP.labels)));
    }
    expect(l.stderr()).not.toContain(slack.token);
    expect(await metric(l, "kubecano_deliveries_total", { destination: "slack-alerts", outcome: "success" })).toBeGreaterThanOrEqual(2);
    expect(await l.stop("SIGTERM")).toBe(0);
  });
});

function metadataOf(params: Record<string, unknown>): { event_type: string; event_payload: Record<string, unknown> } | undefined {
  const m = params["metadata"];
  return typeof m === "object" && m !== null && "event_payload" in m ? (m as { event_type: string; event_payload: Record<string, unknown> }) : undefined;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A string as it appears inside JSON text. */
function escapeJson(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}
