/**
 * Fan-out, end to end: a real Alertmanager posts to the built `kubecano
 * listen`, whose routes send a payments alert (matched by namespace glob and
 * a label) to Slack, PagerDuty and a webhook at once, each a local fake, and
 * resolve it in all three; an alert in another namespace goes to the default
 * destination (a file) only, and a route that matches nothing sends nothing.
 * Then `kubecano replay --dry-run --explain` shows the same decision for the
 * webhook's recorded body. Without Alertmanager the test is skipped locally
 * and fails in CI (CI=true) with the install hint.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startPagerDutyFake, type PagerDutyFake } from "../fakes/pagerduty.js";
import { startSlackFake, type SlackFake } from "../fakes/slack.js";
import { startWebhookFake, type WebhookFake } from "../fakes/webhook.js";
import { alertmanagerGate, startAlertmanager, stopAllAlertmanagers, type Alertmanager, type TestAlert } from "../helpers/alertmanager.js";
import { eventually, makeTempDir, removeTempDir, runCli, startListen, stopAllChildren } from "../helpers/cli.js";

const gate = alertmanagerGate();
if (gate.skip) console.warn(`[e2e] skipping the fan-out test: ${gate.reason}`);

const PD_KEY = "R0E2EFANOUTPAGERDUTYKEY000000001";
const HOOK_SECRET = "e2e-fanout-hmac-secret-0123456789";

const PAYMENTS: TestAlert = {
  labels: { alertname: "PaymentsLatencyHigh", namespace: "payments-api", pod: "api-5f7d", team: "payments", severity: "critical" },
  annotations: { summary: "Payments API p99 latency is above 2s", description: "p99 of POST /charge is 3.4s over the last 5m." },
};
const SHOP: TestAlert = {
  labels: { alertname: "ShopCheckoutErrors", namespace: "shop", pod: "checkout-9c2b", team: "shop", severity: "warning" },
  annotations: { summary: "Checkout errors above 1%" },
};

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopAllChildren();
  await stopAllAlertmanagers();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(async () => {
  await stopAllChildren();
  await stopAllAlertmanagers();
});

function config(slack: SlackFake, pd: PagerDutyFake, hook: WebhookFake): string {
  return `clusterName: e2e
destinations:
  - name: slack-payments
    type: slack
    params:
      token: \${SLACK_TOKEN}
      channel: ${slack.channelId}
      api_url: ${slack.url}
  - name: pagerduty-payments
    type: pagerduty
    params:
      routing_key: \${PD_KEY}
      api_url: ${pd.url}
  - name: hook
    type: webhook
    params:
      url: ${hook.url}
      secret: \${HOOK_SECRET}
  - name: platform-audit
    type: file
    params:
      path: platform.ndjson
  - name: audit
    type: file
    params:
      path: audit/issues.ndjson
routes:
  - name: platform
    match:
      namespaces: [kube-system, "monitoring-*"]
    destinations: [platform-audit]
  - name: payments
    match:
      namespaces: ["payments-*"]
      labels:
        team: payments
    destinations: [slack-payments, pagerduty-payments, hook]
defaultDestinations: [audit]
`;
}

function slackStatuses(slack: SlackFake, fingerprint: string): unknown[] {
  return slack.messages.filter((m) => m.metadata?.event_payload["fingerprint"] === fingerprint).map((m) => m.metadata?.event_payload["status"]);
}

function fileDocs(file: string): { event: string; issue: { fingerprint: string; aggregationKey: string } }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { event: string; issue: { fingerprint: string; aggregationKey: string } });
}

describe.skipIf(gate.skip)(`fan-out by routes behind a real Alertmanager${gate.skip ? ` (skipped: ${gate.reason})` : ""}`, { timeout: 180_000 }, () => {
  it("one payments alert reaches Slack, PagerDuty and a webhook and resolves in all three; a shop alert only the default destination", async () => {
    const slack = await startSlackFake();
    const pd = await startPagerDutyFake({ routingKeys: [PD_KEY] });
    const hook = await startWebhookFake({ secret: HOOK_SECRET });
    cleanups.push(() => slack.close(), () => pd.close(), () => hook.close());
    const cwd = await makeTempDir();
    cleanups.push(() => removeTempDir(cwd));
    await writeFile(path.join(cwd, "kubecano.config.yaml"), config(slack, pd, hook));
    const env = { SLACK_TOKEN: slack.token, PD_KEY, HOOK_SECRET };

    const l = await startListen(["--no-cluster"], { cwd, env });
    const am: Alertmanager = await startAlertmanager({ webhook: { url: `${l.url}/api/alerts` } });
    const payments = await am.addAlert(PAYMENTS);
    const shop = await am.addAlert(SHOP);
    const fingerprintOf = (name: string) => eventually(async () => (await am.alerts()).find((a) => a.labels["alertname"] === name)?.fingerprint, `Alertmanager to list ${name}`, 60_000);
    const fp = await fingerprintOf(PAYMENTS.labels.alertname);
    const shopFp = await fingerprintOf(SHOP.labels.alertname);
    const audit = path.join(cwd, "audit", "issues.ndjson");

    // Firing: all three payments destinations, the shop alert in the audit file.
    await slack.waitFor(() => slackStatuses(slack, fp).includes("FIRING"), 60_000);
    await eventually(() => pd.events.some((e) => e.event_action === "trigger" && e.status === 202), "PagerDuty to get the trigger", 60_000);
    await hook.waitFor(() => hook.received(fp).includes("open"), 60_000);
    await eventually(() => fileDocs(audit).some((d) => d.issue.fingerprint === shopFp), "the shop alert in the audit file", 60_000);

    await am.resolveAlert(payments);
    await am.resolveAlert(shop);
    await slack.waitFor(() => slackStatuses(slack, fp).includes("RESOLVED"), 60_000);
    await eventually(() => pd.events.some((e) => e.event_action === "resolve" && e.status === 202), "PagerDuty to get the resolve", 60_000);
    await hook.waitFor(() => hook.received(fp).includes("resolve"), 60_000);
    await eventually(() => fileDocs(audit).some((d) => d.issue.fingerprint === shopFp && d.event === "issue.resolved"), "the shop resolution in the audit file", 60_000);

    // Slack: one thread, its root edited to show RESOLVED, the resolution a reply in it.
    await slack.waitFor(() => slack.messages.some((m) => m.thread_ts === undefined && m.edits > 0 && m.metadata?.event_payload["fingerprint"] === fp), 60_000);
    expect(slack.messages.filter((m) => m.metadata?.event_payload["fingerprint"] === fp).map((m) => [m.thread_ts === undefined ? "root" : "reply", m.metadata?.event_payload["status"]])).toEqual([
      ["root", "RESOLVED"],
      ["reply", "RESOLVED"],
    ]);
    expect(slack.callsTo("chat.postMessage").every((c) => c.outcome === "ok")).toBe(true);

    // PagerDuty: trigger then resolve with one dedup_key.
    const pdEvents = pd.events.filter((e) => e.status === 202);
    expect(pdEvents.map((e) => e.event_action)).toEqual(["trigger", "resolve"]);
    const dedupKey = pdEvents[0]!.dedup_key!;
    expect(pdEvents[1]!.dedup_key).toBe(dedupKey);
    expect(pd.received(dedupKey)).toEqual(["open", "resolve"]);
    expect(pd.alerts(dedupKey).at(-1)?.status).toBe("resolved");

    // Webhook: issue.firing then issue.resolved, each signed.
    expect(hook.received(fp)).toEqual(["open", "resolve"]);
    expect(hook.documents().map((d) => d["event"])).toEqual(["issue.firing", "issue.resolved"]);
    expect(hook.calls.every((c) => c.signatureOk === true)).toBe(true);

    // The shop alert went to the default destination only; the unmatched route's destination got nothing.
    expect(fileDocs(audit).map((d) => [d.event, d.issue.aggregationKey])).toEqual([
      ["issue.firing", "ShopCheckoutErrors"],
      ["issue.resolved", "ShopCheckoutErrors"],
    ]);
    expect(JSON.stringify(slack.messages)).not.toContain(shopFp);
    expect(pd.events.map((e) => e.dedup_key)).toEqual([dedupKey, dedupKey]);
    expect(JSON.stringify(pd.events[0]!.body)).toContain("PaymentsLatencyHigh");
    expect(hook.documents().every((d) => (d["issue"] as { fingerprint: string }).fingerprint === fp)).toBe(true);
    expect(existsSync(path.join(cwd, "platform.ndjson"))).toBe(false);
    // No secret in kubecano's own output.
    for (const s of [slack.token, PD_KEY, HOOK_SECRET]) expect(`${l.stdout()}${l.stderr()}`).not.toContain(s);
    expect(await l.stop("SIGTERM")).toBe(0);

    // replay --explain shows the same decision for the webhook's recorded body.
    const recorded = path.join(cwd, "recorded.json");
    await writeFile(recorded, hook.calls[0]!.body);
    const explain = await runCli(["replay", "--dry-run", "--explain", "--no-cluster", recorded], { cwd, env });
    expect(explain.code).toBe(0);
    expect(explain.stdout).toMatch(/routing\s+→ slack-payments, pagerduty-payments, hook\s+route payments/);
    expect(explain.stdout).toMatch(/· platform → platform-audit\s+namespace "payments-api" does not match \[kube-system, monitoring-\*\]/);
    expect(explain.stdout).toMatch(/✔ payments → slack-payments, pagerduty-payments, hook\s+matched namespace=payments-\* labels\.team=payments/);
    expect(explain.stdout).toContain("dry run: would send to slack-payments (slack), pagerduty-payments (pagerduty), hook (webhook); nothing was sent");
  });
});
