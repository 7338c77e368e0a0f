/**
 * End-to-end tests of `kubecano replay` and of cluster enrichment in
 * `kubecano listen`, through the built CLI (bin/kubecano → dist/) against the
 * Kubernetes API fake and the Slack fake on 127.0.0.1. Every test has its own
 * cwd and fakes, so this file runs in parallel with the others.
 */
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { checkLimits, type SlackMessage } from "../../src/destinations/slack/limits.js";
import { startKubeFake, type KubeFake } from "../fakes/kube.js";
import { checkBlockKit, FAKE_TOKEN, startSlackFake, type SlackFake } from "../fakes/slack.js";
import {
  REPO_ROOT,
  eventually,
  postAlerts,
  removeTempDir,
  request,
  runCli,
  startListen,
  stopAllChildren,
  tempDirWith,
  type Listener,
  type ListenOptions,
  type RunResult,
} from "../helpers/cli.js";
import { addCrashLoopOom, CRASHLOOP, crashLoopAlert } from "../helpers/cluster-scenarios.js";

vi.setConfig({ testTimeout: 90_000, hookTimeout: 90_000 });

const FIXTURE = path.join(REPO_ROOT, "test", "fixtures", "alertmanager", "firing-crashloop.json");

const tempDirs: string[] = [];
async function cwdWith(files: Record<string, string> = {}): Promise<string> {
  const dir = await tempDirWith(files);
  tempDirs.push(dir);
  return dir;
}

const fakes: { close(): Promise<void> }[] = [];
/** A Kubernetes API fake where pod shop/api-7d9f was OOM killed (see cluster-scenarios), closed after the test. */
async function oomCluster(): Promise<KubeFake> {
  const f = await startKubeFake();
  fakes.push(f);
  addCrashLoopOom(f, new Date());
  return f;
}
async function slackFake(): Promise<SlackFake> {
  const s = await startSlackFake();
  fakes.push(s);
  return s;
}

const perTest: Listener[] = [];
async function listen(args: readonly string[], opts: ListenOptions): Promise<Listener> {
  const l = await startListen(["--ephemeral", ...args], opts);
  perTest.push(l);
  return l;
}

afterEach(async () => {
  await Promise.all(perTest.splice(0).map((l) => l.stop("SIGKILL")));
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});
afterAll(async () => {
  await stopAllChildren();
  await Promise.all(tempDirs.splice(0).map(removeTempDir));
});

function slackConfig(slack: SlackFake, extra = ""): string {
  return ["destinations:", "  - name: slack-main", "    type: slack", "    params:", `      token: ${FAKE_TOKEN}`, `      channel: ${slack.channelId}`, `      api_url: ${slack.url}`, extra].join("\n");
}

/** A kubeconfig whose API server is a closed port on 127.0.0.1. */
async function closedPortKubeconfig(dir: string): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", () => resolve()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  const f = await startKubeFake();
  const yaml = f.kubeconfigYaml().replace(f.url, `http://127.0.0.1:${port}`);
  await f.close();
  const file = path.join(dir, "closed.kubeconfig");
  const { writeFile } = await import("node:fs/promises");
  await writeFile(file, yaml);
  return file;
}

/** The one-line refusal `replay` gives for bad input: exit 2, the problem on the first line, nothing on stdout, no stack. */
function expectRefused(r: RunResult, firstLine: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines[0]).toMatch(firstLine);
  expect(lines.length).toBeLessThanOrEqual(2);
  if (lines[1] !== undefined) expect(lines[1]).toMatch(/^ {2}hint: /);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

function slackChecks(msg: SlackMessage): void {
  expect(checkLimits(msg)).toEqual([]);
  const bk = checkBlockKit(msg.blocks, msg.attachments);
  expect(bk.errors).toEqual([]);
  expect(bk.tooLong).toBe(false);
}

describe("kubecano replay against a cluster", () => {
  it("--dry-run previews the crash loop with the previous logs, exit code 137, OOMKilled, restarts, memory limit and events", async () => {
    const kube = await oomCluster();
    const r = await runCli(["replay", FIXTURE, "--dry-run", "--kubeconfig", kube.kubeconfigPath()], { cwd: await cwdWith() });
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toContain("── Pod shop/api-7d9f");
    expect(out).toContain(":warning: *api was OOMKilled* — exit code 137 (SIGKILL), memory limit 256Mi");
    expect(out).toMatch(/^ {2}api +CrashLoopBackOff +7 +⚠ OOMKilled, exit 137 \(SIGKILL\), \S+ ago after 5s$/m);
    expect(out).toContain("── Logs of api (previous container, before the last restart)");
    expect(out).toContain("│ java.lang.OutOfMemoryError: Java heap space");
    expect(out).toContain("── Events of pod api-7d9f");
    expect(out).toMatch(/^ {2}\S+ ago +Warning +BackOff +42 +Back-off restarting failed container api/m);
    expect(out).toContain("dry run: would send to console (console); nothing was sent");
    expect(kube.requests.filter((q) => q.subresource === "log").map((q) => [q.query["container"], q.query["previous"], q.status])).toEqual([["api", "true", 200]]);
  });

  it("--explain shows the matched workflow, each action with its result, and the destinations", async () => {
    const kube = await oomCluster();
    const r = await runCli(["replay", FIXTURE, "--dry-run", "--explain", "--kubeconfig", kube.kubeconfigPath()], { cwd: await cwdWith() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`cluster   ${kube.kubeconfigPath()} (context fake)`);
    expect(r.stdout).toMatch(/^ {2}✔ crashloop-context \(built-in\) {2}matched on_alertmanager_alert alert_name=KubePodCrashLooping status=firing$/m);
    expect(r.stdout).toMatch(/^ {6}✔ pod_status +[\d.]+ ms {2}2 containers, 7 restarts, OOMKilled: api$/m);
    expect(r.stdout).toMatch(/^ {6}✔ pod_logs +[\d.]+ ms {2}container api; previous: 200 lines$/m);
    expect(r.stdout).toMatch(/^ {6}✔ pod_events +[\d.]+ ms {2}10 events$/m);
    expect(r.stdout).toMatch(/^ {2}· job-failed-context \(built-in\) {2}alert_name "KubePodCrashLooping" does not match \[KubeJobFailed, KubeJobNotCompleted\]$/m);
    expect(r.stdout).toMatch(/^routing {3}→ console /m);
  });

  it("--no-cluster skips enrichment and asks the cluster nothing", async () => {
    const kube = await oomCluster();
    const r = await runCli(["replay", FIXTURE, "--dry-run", "--explain", "--no-cluster", "--kubeconfig", kube.kubeconfigPath()], { cwd: await cwdWith() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("cluster   disabled (--no-cluster): Issues are sent without cluster enrichment");
    expect(r.stdout).toMatch(/^ {6}- pod_status +0 ms {2}skipped: no cluster access$/m);
    expect(r.stdout).not.toContain("── Pod shop/api-7d9f");
    expect(r.stdout).not.toContain("exit code 137");
    expect(kube.requests).toHaveLength(0);
  });

  it("-o json has each destination's payload; -o slack gives Block Kit the Slack fake accepts", async () => {
    const kube = await oomCluster();
    const slack = await slackFake();
    const cwd = await cwdWith({ "kubecano.config.yaml": `${slackConfig(slack)}\n  - name: terminal\n    type: console\n` });
    const json = await runCli(["replay", FIXTURE, "--dry-run", "-o", "json", "--kubeconfig", kube.kubeconfigPath()], { cwd });
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as { dryRun: boolean; cluster: string; issues: { source: string; issue: { aggregationKey: string; enrichments: { title: string }[] }; destinations: { name: string; type: string; payload: unknown }[] }[] };
    expect(doc.dryRun).toBe(true);
    expect(doc.issues).toHaveLength(1);
    const [issue] = doc.issues;
    expect(issue!.issue.enrichments.map((e) => e.title)).toEqual(["Pod shop/api-7d9f", "Logs of api (previous container, before the last restart)", "Events of pod api-7d9f"]);
    expect(issue!.destinations.map((d) => [d.name, d.type])).toEqual([
      ["slack-main", "slack"],
      ["terminal", "console"],
    ]);
    const slackPayload = issue!.destinations[0]!.payload as SlackMessage & { channel: string };
    expect(slackPayload.channel).toBe(slack.channelId);
    slackChecks(slackPayload);
    expect(JSON.stringify(slackPayload)).toContain("OOMKilled");
    expect(issue!.destinations[1]!.payload).toEqual(expect.stringContaining("java.lang.OutOfMemoryError"));

    const sl = await runCli(["replay", FIXTURE, "--dry-run", "-o", "slack", "--kubeconfig", kube.kubeconfigPath()], { cwd });
    expect(sl.code, sl.stderr).toBe(0);
    const messages = JSON.parse(sl.stdout) as { source: string; destination: string | null; message: SlackMessage }[];
    expect(messages.map((m) => [m.source, m.destination])).toEqual([[FIXTURE, "slack-main"]]);
    slackChecks(messages[0]!.message);
    // Nothing was sent in a dry run.
    expect(slack.messages).toHaveLength(0);

    // Without a Slack destination, -o slack still shows what Slack would get.
    const bare = await runCli(["replay", FIXTURE, "--dry-run", "-o", "slack", "--no-cluster"], { cwd: await cwdWith() });
    const m2 = JSON.parse(bare.stdout) as { destination: string | null; message: SlackMessage }[];
    expect(m2.map((m) => m.destination)).toEqual([null]);
    slackChecks(m2[0]!.message);
  });

  it("without --dry-run it sends: to the console, and to Slack; a failing destination exits 1", async () => {
    const kube = await oomCluster();
    const consoleRun = await runCli(["replay", FIXTURE, "--kubeconfig", kube.kubeconfigPath()], { cwd: await cwdWith() });
    expect(consoleRun.code, consoleRun.stderr).toBe(0);
    expect(consoleRun.stdout).toContain("java.lang.OutOfMemoryError");
    expect(consoleRun.stdout).toMatch(/^✔ console {2}/m);

    const slack = await slackFake();
    const cwd = await cwdWith({ "kubecano.config.yaml": slackConfig(slack) });
    const sent = await runCli(["replay", FIXTURE, "--kubeconfig", kube.kubeconfigPath()], { cwd });
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(new RegExp(`^✔ slack-main {2}posted to ${slack.channelId} \\(ts [\\d.]+\\)$`, "m"));
    // One message (the logs are attached in its thread as a file).
    expect(slack.topLevel()).toHaveLength(1);
    expect(JSON.stringify(slack.messages[0]!.attachments)).toContain("memory limit 256Mi");

    slack.platformError("channel_not_found", { method: "chat.postMessage" });
    const failed = await runCli(["replay", FIXTURE, "--kubeconfig", kube.kubeconfigPath()], { cwd });
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stdout).toMatch(/^✖ slack-main {2}.*channel_not_found/m);
    expect(failed.stdout).toMatch(/^ {2}hint: /m);
    expect(slack.topLevel()).toHaveLength(1);
  });
});

describe("kubecano replay inputs", () => {
  const body = (): Record<string, unknown> => (JSON.parse(readFileSync(FIXTURE, "utf8")) as { body: Record<string, unknown> }).body;

  it("refuses bad input with one line naming the file, exit 2", async () => {
    const schemaBad = body();
    ((schemaBad["alerts"] as Record<string, unknown>[])[0]!["labels"] as Record<string, unknown>)["alertname"] = 5;
    const cwd = await cwdWith({
      "invalid.json": '{\n  "alerts": [\n    {"labels": {"alertname": "X"},\n    ]\n}\n',
      "schema.json": JSON.stringify(schemaBad, null, 2),
      "empty.json": "  \n",
      "broken.ndjson": `${JSON.stringify({ labels: { alertname: "A" } })}\n${JSON.stringify({ labels: { alertname: "B" } })}\n{"labels": {"alertname": "C"\n`,
    });
    const run = (file: string): Promise<RunResult> => runCli(["replay", file, "--dry-run", "--no-cluster"], { cwd });
    expectRefused(await run("missing.json"), /^kubecano: missing\.json: no such file or directory$/);
    expectRefused(await run("invalid.json"), /^kubecano: invalid\.json: invalid JSON at line 4 column 5: /);
    expectRefused(await run("schema.json"), /^kubecano: schema\.json: alerts\[0\]\.labels\.alertname: expected string, received number$/);
    expectRefused(await run("empty.json"), /^kubecano: empty\.json: is empty$/);
    expectRefused(await run("broken.ndjson"), /^kubecano: broken\.ndjson:3: invalid JSON at column \d+: /);
  });

  it("reads a directory (its .json, .ndjson and .jsonl files, in name order), stdin, and hand-written alerts", async () => {
    const alert = (name: string): string => JSON.stringify({ labels: { alertname: name, namespace: "shop", pod: `${name.toLowerCase()}-1` }, annotations: { summary: `${name} summary` } });
    const dir = await cwdWith({
      "b.json": JSON.stringify(body()),
      "a.ndjson": `${alert("First")}\n\n${alert("Second")}\n`,
      "c.jsonl": alert("Third"),
      "notes.txt": "not an input",
    });
    const r = await runCli(["replay", dir, "--dry-run", "--no-cluster"], { cwd: await cwdWith() });
    expect(r.code, r.stderr).toBe(0);
    const headings = r.stdout.split("\n").filter((l) => l.startsWith("── "));
    expect(headings).toEqual([
      `── ${path.join(dir, "a.ndjson")}:1 · First (1 of 4) ──`,
      `── ${path.join(dir, "a.ndjson")}:3 · Second (2 of 4) ──`,
      `── ${path.join(dir, "b.json")} · KubePodCrashLooping (3 of 4) ──`,
      `── ${path.join(dir, "c.jsonl")} · Third (4 of 4) ──`,
    ]);
    // A hand-written alert without status or startsAt fires now.
    expect(r.stdout).toMatch(/^● FIRING {2}INFO {2}First summary$/m);
    expect(r.stdout).toMatch(/started \S+ \S+ \(\d+s ago\)/);

    const stdin = await runCli(["replay", "-", "--dry-run", "--no-cluster"], { cwd: await cwdWith(), input: JSON.stringify(body()) });
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(stdin.stdout).toContain("── stdin · KubePodCrashLooping (1 of 1) ──");

    const empty = await cwdWith({ "notes.txt": "x" });
    expectRefused(await runCli(["replay", empty, "--dry-run", "--no-cluster"], { cwd: await cwdWith() }), /: no \.json, \.ndjson or \.jsonl files in this directory$/);
  });

  it("listen --record DIR writes what replay DIR reads back, without credentials", async () => {
    const rec = await cwdWith();
    const cwd = await cwdWith({ "kubecano.config.yaml": "server:\n  auth:\n    bearerToken: e2e-record-token-0123456789\n" });
    const l = await listen(["--record", rec, "--no-cluster"], { cwd });
    const first = body();
    const second = crashLoopAlert(new Date(), "0b1c2d3e4f506172");
    ((second["alerts"] as Record<string, unknown>[])[0]!["labels"] as Record<string, string>)["pod"] = "api-second";
    for (const b of [first, second]) {
      const res = await postAlerts(l.url, b, { authorization: "Bearer e2e-record-token-0123456789", "x-request-source": "e2e" });
      expect(res.status, res.text).toBe(202);
    }
    // A refused request is not recorded.
    expect((await postAlerts(l.url, first, { authorization: "Bearer wrong-token-0123456789" })).status).toBe(401);
    await eventually(() => readdirSync(rec).length === 2, "two recordings");
    const files = readdirSync(rec).sort();
    for (const f of files) {
      const doc = JSON.parse(readFileSync(path.join(rec, f), "utf8")) as { headers: Record<string, string>; path: string; body: unknown };
      expect(doc.path).toBe("/api/alerts");
      expect(Object.keys(doc.headers).map((k) => k.toLowerCase())).not.toContain("authorization");
      expect(doc.headers["x-request-source"]).toBe("e2e");
      expect(JSON.stringify(doc)).not.toContain("e2e-record-token");
    }
    const r = await runCli(["replay", rec, "--dry-run", "--no-cluster"], { cwd: await cwdWith() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split("\n").filter((line) => line.startsWith("── "))).toEqual([
      `── ${path.join(rec, files[0]!)} · KubePodCrashLooping (1 of 2) ──`,
      `── ${path.join(rec, files[1]!)} · KubePodCrashLooping (2 of 2) ──`,
    ]);
    expect(r.stdout).toContain("shop/pod/api-7d9f");
    expect(r.stdout).toContain("shop/pod/api-second");
  });
});

describe("kubecano listen with cluster enrichment", () => {
  it("answers the webhook 202 before enrichment, then posts the enriched Issue to Slack (pod status, OOM note, logs)", async () => {
    const kube = await oomCluster();
    const slack = await slackFake();
    // Logs take 3 s (a margin for a loaded machine): the webhook must not wait for them.
    kube.delay(3000, { subresource: "log" });
    const cwd = await cwdWith({ "kubecano.config.yaml": slackConfig(slack) });
    const l = await listen(["--kubeconfig", kube.kubeconfigPath()], { cwd });
    const logs = (): { answered: number; asked: number } => {
      const reqs = kube.requests.filter((q) => q.subresource === "log");
      return { asked: reqs.length, answered: reqs.filter((q) => q.status !== undefined).length };
    };

    const res = await postAlerts(l.url, crashLoopAlert(new Date()));
    const atAnswer = { logs: logs(), slack: slack.messages.length };
    expect(res.status, res.text).toBe(202);
    expect(atAnswer).toEqual({ logs: { asked: expect.any(Number) as unknown, answered: 0 }, slack: 0 });

    await slack.waitFor(() => slack.messages.length === 1, 30_000);
    expect(logs()).toEqual({ asked: 1, answered: 1 });
    const msg = slack.messages[0]!;
    const text = JSON.stringify(msg.attachments);
    expect(text).toContain("*Containers*");
    expect(text).toMatch(/api +CrashLoopBackOff +7 +⚠ OOMKilled, exit 137 \(SIGKILL\)/);
    expect(text).toContain(":warning: *api was OOMKilled* — exit code 137 (SIGKILL), memory limit 256Mi");
    expect(text).toContain("java.lang.OutOfMemoryError: Java heap space");
    expect(text).toContain("*Events of pod api-7d9f*");
    slackChecks({ text: msg.text, blocks: (msg.blocks ?? []) as SlackMessage["blocks"], attachments: (msg.attachments ?? []) as SlackMessage["attachments"] });
    expect(kube.count({ resource: "pods", name: CRASHLOOP.pod, verb: "get" })).toBeGreaterThanOrEqual(1);
  });

  it("with no cluster reachable, alerts still go out without enrichment and the log says so once", async () => {
    const cwd = await cwdWith();
    const kubeconfig = await closedPortKubeconfig(cwd);
    const l = await listen(["--kubeconfig", kubeconfig], { cwd });
    for (const pod of ["api-a", "api-b", "api-c"]) {
      const b = crashLoopAlert(new Date(), `f${pod.slice(-1).charCodeAt(0).toString(16).padStart(15, "0")}`);
      ((b["alerts"] as Record<string, unknown>[])[0]!["labels"] as Record<string, string>)["pod"] = pod;
      const res = await postAlerts(l.url, b);
      expect(res.status, res.text).toBe(202);
    }
    await l.waitForStdout((out) => ["api-a", "api-b", "api-c"].every((p) => out.includes(`shop/pod/${p}`)));
    expect(l.stdout()).not.toContain("── Pod shop/");
    expect(l.stdout()).not.toContain("could not run");
    const unreachable = l.logs().filter((line) => typeof line.msg === "string" && line.msg.startsWith("the Kubernetes API is unreachable"));
    expect(unreachable).toHaveLength(1);
    expect(unreachable[0]?.level).toBe("warn");
    expect(unreachable[0]?.msg).toMatch(/ECONNREFUSED/);
    const ready = await request(`${l.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.text).toMatch(/unreachable since/);
  });
});
