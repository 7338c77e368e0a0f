/**
 * Security tests of the built CLI: secrets (Slack bot tokens, incoming
 * webhook URLs, the server's bearer token and basic password) never appear
 * in logs, error messages, metrics, `kubecano deliveries` or `config print`,
 * even at --log-level trace and when every kind of error is forced; and
 * `listen` serves HTTPS with --tls-cert/--tls-key and refuses bad TLS input
 * with exit 2 and one line.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import https from "node:https";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startSlackFake, type SlackFake } from "../fakes/slack.js";
import {
  eventually,
  makeTempDir,
  postAlerts,
  removeTempDir,
  request,
  runCli,
  startListen,
  stopAllChildren,
  tempDirWith,
  type Listener,
  type RunResult,
} from "../helpers/cli.js";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 90_000 });

const RUN = Date.now().toString(16).slice(-6);
const secret = (prefix: string): string => `${prefix}${randomBytes(12).toString("hex")}`;

const tempDirs: string[] = [];
const perTest: Listener[] = [];
afterEach(async () => {
  await Promise.all(perTest.splice(0).map((l) => l.stop("SIGKILL")));
});
afterAll(async () => {
  await stopAllChildren();
  await Promise.all(tempDirs.splice(0).map(removeTempDir));
});

async function cwdWith(files: Record<string, string>): Promise<string> {
  const d = await tempDirWith(files);
  tempDirs.push(d);
  return d;
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function alert(name: string): Record<string, unknown> {
  return {
    status: "firing",
    labels: { alertname: name, namespace: "default", pod: `pod-${RUN}-${randomBytes(3).toString("hex")}`, severity: "critical" },
    annotations: { summary: `${name} for the secrets test` },
    startsAt: new Date().toISOString(),
    fingerprint: `${RUN}${randomBytes(6).toString("hex")}`,
  };
}
const webhookBody = (name: string): Record<string, unknown> => ({ version: "4", status: "firing", receiver: "kubecano", alerts: [alert(name)] });

/** Fails naming where a secret leaked, and shows the line around it (with the secret masked). */
function expectNoSecrets(where: string, text: string, secrets: readonly string[]): void {
  for (const s of secrets) {
    const i = text.indexOf(s);
    if (i >= 0) {
      const line = text.slice(Math.max(0, text.lastIndexOf("\n", i) + 1), text.indexOf("\n", i) < 0 ? undefined : text.indexOf("\n", i)).split(s).join("<SECRET>");
      expect.fail(`a secret (${s.slice(0, 6)}…) appears in ${where}: ${line.slice(0, 500)}`);
    }
  }
}

function all(r: RunResult): string {
  return `${r.stdout}\n${r.stderr}`;
}

// ───────────────────────────── destination secrets ─────────────────────────────

describe("destination secrets never leak, whatever the error", () => {
  let fake: SlackFake;
  let refusedPort: number;
  beforeAll(async () => {
    fake = await startSlackFake();
    refusedPort = await closedPort();
  });
  afterAll(async () => {
    await fake?.close();
  });

  it("slack bot tokens and webhook URLs: not in stderr (trace), stdout, /metrics, deliveries, test-destination or config print", async () => {
    const tokens = {
      invalidAuth: secret("xoxb-e2e-UNKNOWN-"),
      channelNotFound: secret("xoxb-e2e-CHAN-"),
      http500: secret("xoxb-e2e-FIVE-"),
      refused: secret("xoxb-e2e-REFUSED-"),
      timeout: secret("xoxb-e2e-HANG-"),
      ok: secret("xoxb-e2e-OK-"),
    };
    for (const [k, t] of Object.entries(tokens)) if (k !== "invalidAuth") fake.addToken(t);
    fake.addChannel({ id: "C0FIVEHUND", name: "five-hundred" });
    fake.addChannel({ id: "C0HANGING1", name: "hanging" });
    fake.addChannel({ id: "C0WEBH5001", name: "webhook-500" });
    fake.addChannel({ id: "C0WEBHHANG", name: "webhook-hang" });
    fake.addChannel({ id: "C0WEBHREVK", name: "webhook-revoked" });
    fake.failFor(10 * 60_000, { status: 500, channel: "C0FIVEHUND" });
    fake.failFor(10 * 60_000, { status: 500, channel: "C0WEBH5001", method: "webhook" });
    fake.hang({ channel: "C0HANGING1" });
    fake.hang({ channel: "C0WEBHHANG", method: "webhook" });
    const hooks = {
      http500: fake.webhookUrl("webhook-500"),
      timeout: fake.webhookUrl("webhook-hang"),
      archived: fake.webhookUrl("archived"),
      revoked: fake.webhookUrl("webhook-revoked"),
      ok: fake.webhookUrl("alerts"),
      refused: `http://127.0.0.1:${refusedPort}/services/T0FAKETEAM/B0REFUSED1/${randomBytes(12).toString("hex")}`,
    };
    fake.revokeWebhook(hooks.revoked);
    const secrets = [
      ...Object.values(tokens),
      // The path of a webhook URL is its secret: neither the path nor its last segment may show.
      ...Object.values(hooks).flatMap((u) => {
        const p = new URL(u).pathname;
        return [p, p.slice(p.lastIndexOf("/") + 1)];
      }),
    ];

    /** Secrets come from ${ENV} placeholders, except where `inline` puts one in the file itself. */
    // A short timeout only where the test is about it: a loaded machine must not turn a 500 into a timeout.
    const timeoutOf = (name: string): string => (name.endsWith("-timeout") ? "300ms" : "10s");
    const bot = (name: string, channel: string, apiUrl = fake.url, inline?: string): string[] => [
      `  - name: ${name}`,
      "    type: slack",
      "    params:",
      `      token: ${inline ?? `\${${name.toUpperCase().replace(/-/g, "_")}_TOKEN}`}`,
      `      channel: ${channel}`,
      `      api_url: ${apiUrl}`,
      `      timeout: ${timeoutOf(name)}`,
    ];
    const hook = (name: string): string[] => [`  - name: ${name}`, "    type: slack", "    params:", `      webhook_url: \${${name.toUpperCase().replace(/-/g, "_")}_URL}`, `      timeout: ${timeoutOf(name)}`];
    const config = [
      "destinations:",
      ...bot("bot-invalid-auth", "C0ALERTS01"),
      ...bot("bot-channel-not-found", "C0MISSING1"),
      ...bot("bot-http-500", "C0FIVEHUND"),
      ...bot("bot-refused", "C0ALERTS01", `http://127.0.0.1:${refusedPort}/api/`),
      ...bot("bot-timeout", "C0HANGING1"),
      ...bot("bot-ok", "C0ALERTS01", fake.url, tokens.ok),
      ...hook("hook-http-500"),
      ...hook("hook-timeout"),
      ...hook("hook-archived"),
      ...hook("hook-revoked"),
      ...hook("hook-refused"),
      ...hook("hook-ok"),
      "delivery:",
      "  attemptTimeout: 15s",
      "  retry:",
      "    initialDelay: 50ms",
      "    maxDelay: 200ms",
      "",
    ].join("\n");
    const env: Record<string, string> = {
      BOT_INVALID_AUTH_TOKEN: tokens.invalidAuth,
      BOT_CHANNEL_NOT_FOUND_TOKEN: tokens.channelNotFound,
      BOT_HTTP_500_TOKEN: tokens.http500,
      BOT_REFUSED_TOKEN: tokens.refused,
      BOT_TIMEOUT_TOKEN: tokens.timeout,
      HOOK_HTTP_500_URL: hooks.http500,
      HOOK_TIMEOUT_URL: hooks.timeout,
      HOOK_ARCHIVED_URL: hooks.archived,
      HOOK_REVOKED_URL: hooks.revoked,
      HOOK_REFUSED_URL: hooks.refused,
      HOOK_OK_URL: hooks.ok,
    };
    const cwd = await cwdWith({ "kubecano.config.yaml": config });
    const stateDir = await makeTempDir("kubecano-sec-state-");
    tempDirs.push(stateDir);
    const runEnv = { ...env, KUBECANO_STATE_DIR: stateDir };

    const l = await startListen(["--log-level", "trace", "--shutdown-grace", "1s"], { cwd, env: runEnv, timeoutMs: 60_000 });
    perTest.push(l);
    for (let i = 0; i < 3; i++) expect((await postAlerts(l.url, webhookBody("SecretsTest"))).status).toBe(202);

    // Wait until every failing destination has failed for good (dead) or at least twice (retrying).
    type Row = { destination: string; state: string; attempts: number; lastError?: string };
    const failing = ["bot-invalid-auth", "bot-channel-not-found", "bot-http-500", "bot-refused", "bot-timeout", "hook-http-500", "hook-timeout", "hook-archived", "hook-revoked", "hook-refused"];
    let deliveries: RunResult | undefined;
    await eventually(
      async () => {
        deliveries = await runCli(["deliveries", "--json"], { cwd, env: runEnv });
        if (deliveries.code !== 0) return false;
        const rows = (JSON.parse(deliveries.stdout) as { deliveries: Row[] }).deliveries;
        return failing.every((d) => rows.some((r) => r.destination === d && (r.state === "dead" || r.attempts >= 2) && r.lastError !== undefined));
      },
      "every failing destination to have failed",
      90_000,
      500,
    );
    // The working destinations delivered (so the secrets were in use, not just configured).
    expect(fake.messages.filter((m) => m.via === "api").length).toBeGreaterThanOrEqual(3);
    expect(fake.messages.filter((m) => m.via === "webhook").length).toBeGreaterThanOrEqual(3);
    const rows = (JSON.parse(deliveries!.stdout) as { deliveries: Row[] }).deliveries;
    // Each error is really the one forced (so the test looked at the right messages).
    const errorOf = (d: string): string => rows.find((r) => r.destination === d)?.lastError ?? "";
    expect(errorOf("bot-invalid-auth")).toMatch(/invalid_auth/);
    expect(errorOf("bot-channel-not-found")).toMatch(/channel_not_found/);
    expect(errorOf("bot-http-500")).toMatch(/HTTP 500/);
    expect(errorOf("bot-refused")).toMatch(/ECONNREFUSED|cannot reach/i);
    expect(errorOf("bot-timeout")).toMatch(/no answer|timeout|within/i);
    expect(errorOf("hook-http-500")).toMatch(/HTTP 500/);
    expect(errorOf("hook-timeout")).toMatch(/did not answer|no answer|timeout|within/i);
    expect(errorOf("hook-archived")).toMatch(/channel_is_archived/);
    expect(errorOf("hook-revoked")).toMatch(/no_service|404/);
    expect(errorOf("hook-refused")).toMatch(/ECONNREFUSED|cannot reach/i);

    const metrics = await request(`${l.url}/metrics`);
    const human = await runCli(["deliveries", "--state", "all"], { cwd, env: runEnv });
    const dead = await runCli(["deliveries", "--state", "dead", "--json"], { cwd, env: runEnv });
    const printYaml = await runCli(["config", "print"], { cwd, env: runEnv });
    const printJson = await runCli(["config", "print", "--json"], { cwd, env: runEnv });
    const validate = await runCli(["config", "validate"], { cwd, env: runEnv });
    const test = await runCli(["test-destination", "--json", "--log-level", "trace"], { cwd, env: runEnv, timeoutMs: 90_000 });
    const testHuman = await runCli(["test-destination", "--log-level", "trace"], { cwd, env: runEnv, timeoutMs: 90_000 });
    expect(printYaml.code, printYaml.stderr).toBe(0);
    expect(printYaml.stdout).toContain("[REDACTED]");
    expect(test.code).toBe(1);
    const tested = JSON.parse(test.stdout) as { ok: boolean; results: { destination: string; ok: boolean }[] };
    expect(tested.ok).toBe(false);
    expect(tested.results.filter((r) => r.ok).map((r) => r.destination).sort()).toEqual(["bot-ok", "hook-ok"]);
    // Stop the listener so its shutdown lines are checked too.
    expect(await l.stop("SIGTERM")).toBe(0);

    // The trace log really carries the errors and the SDK's chatter that could hold a secret.
    expect(l.stderr()).toMatch(/"level":"trace"|"level":"debug"/);
    expect(l.stderr()).toMatch(/invalid_auth/);
    for (const [where, text] of [
      ["listen stderr (trace logs)", l.stderr()],
      ["listen stdout", l.stdout()],
      ["/metrics", metrics.text],
      ["deliveries --json", all(deliveries!)],
      ["deliveries", all(human)],
      ["deliveries --state dead --json", all(dead)],
      ["config print", all(printYaml)],
      ["config print --json", all(printJson)],
      ["config validate", all(validate)],
      ["test-destination --json", all(test)],
      ["test-destination", all(testHuman)],
    ] as const) {
      expectNoSecrets(where, text, secrets);
    }
  });
});

// ───────────────────────────── server credentials ─────────────────────────────

describe("the server's credentials never appear in logs", () => {
  it("bearer token: not logged when clients send wrong, near or right tokens, anywhere in the request", async () => {
    const TOKEN = secret("bearer-e2e-");
    const cwd = await cwdWith({ "kubecano.config.yaml": "server:\n  auth:\n    bearerToken: ${SERVER_TOKEN}\n" });
    const l = await startListen(["--log-level", "trace"], { cwd, env: { SERVER_TOKEN: TOKEN } });
    perTest.push(l);
    const attempts: [Record<string, string>, number][] = [
      [{ authorization: `Bearer ${TOKEN}x` }, 401],
      [{ authorization: `Bearer x${TOKEN}` }, 401],
      [{ authorization: `Bearer ${TOKEN.slice(0, -1)}` }, 401],
      [{ authorization: `Basic ${Buffer.from(`am:${TOKEN}`).toString("base64")}` }, 401],
      [{ authorization: `Token ${TOKEN}` }, 401],
      [{ authorization: TOKEN }, 401],
      [{ "x-api-key": TOKEN }, 401],
      [{ authorization: `Bearer ${TOKEN}` }, 202],
      [{ authorization: `bearer ${TOKEN}` }, 202],
    ];
    for (const [headers, status] of attempts) {
      const r = await postAlerts(l.url, webhookBody("ServerAuth"), headers);
      expect(r.status, JSON.stringify(Object.keys(headers))).toBe(status);
      expect(r.text).not.toContain(TOKEN);
    }
    // The token in the path or the query of a request.
    expect((await request(`${l.url}/api/alerts/${TOKEN}`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(404);
    expect((await postAlerts(`${l.url}/api/alerts?token=${TOKEN}`, webhookBody("ServerAuth"))).status).toBe(401);
    // Wrong tokens in a body that fails validation (with the right token).
    expect((await postAlerts(l.url, `{"alerts": "${TOKEN}"}`, { authorization: `Bearer ${TOKEN}` })).status).toBe(400);
    const metrics = await request(`${l.url}/metrics`);
    expect(await l.stop("SIGTERM")).toBe(0);
    expect(l.logs().some((x) => x["code"] === 401)).toBe(true);
    for (const [where, text] of [
      ["stderr", l.stderr()],
      ["stdout", l.stdout()],
      ["/metrics", metrics.text],
    ] as const) {
      expectNoSecrets(where, text, [TOKEN]);
    }
    const printed = await runCli(["config", "print", "--json"], { cwd, env: { SERVER_TOKEN: TOKEN } });
    expect(printed.code, printed.stderr).toBe(0);
    expectNoSecrets("config print --json", all(printed), [TOKEN]);
  });

  it("basic password: not logged, nor the credentials' base64, whatever clients send", async () => {
    const PASSWORD = secret("pw-e2e-");
    const cwd = await cwdWith({ "kubecano.config.yaml": "server:\n  auth:\n    basic:\n      username: alertmanager\n      password: ${SERVER_PASSWORD}\n" });
    const l = await startListen(["--log-level", "trace"], { cwd, env: { SERVER_PASSWORD: PASSWORD } });
    perTest.push(l);
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    const attempts: [Record<string, string>, number][] = [
      [{ authorization: `Basic ${b64(`alertmanager:${PASSWORD}x`)}` }, 401],
      [{ authorization: `Basic ${b64(`root:${PASSWORD}`)}` }, 401],
      [{ authorization: `Basic ${b64(`alertmanager:${PASSWORD}`)}x` }, 401],
      [{ authorization: `Basic alertmanager:${PASSWORD}` }, 401],
      [{ authorization: `Bearer ${PASSWORD}` }, 401],
      [{ authorization: `Basic ${b64(`alertmanager:${PASSWORD}`)}` }, 202],
    ];
    for (const [headers, status] of attempts) {
      const r = await postAlerts(l.url, webhookBody("ServerBasic"), headers);
      expect(r.status).toBe(status);
      expect(r.text).not.toContain(PASSWORD);
    }
    expect(await l.stop("SIGTERM")).toBe(0);
    const secrets = [PASSWORD, b64(`alertmanager:${PASSWORD}`)];
    expectNoSecrets("stderr", l.stderr(), secrets);
    expectNoSecrets("stdout", l.stdout(), secrets);
    const printed = await runCli(["config", "print"], { cwd, env: { SERVER_PASSWORD: PASSWORD } });
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(/username: alertmanager/);
    expectNoSecrets("config print", all(printed), secrets);
  });
});

// ───────────────────────────── TLS ─────────────────────────────

const execFileP = promisify(execFile);

describe("TLS", () => {
  let dir: string;
  let cert: string;
  let key: string;
  let otherKey: string;
  beforeAll(async () => {
    dir = await makeTempDir("kubecano-tls-");
    tempDirs.push(dir);
    cert = path.join(dir, "c.pem");
    key = path.join(dir, "k.pem");
    otherKey = path.join(dir, "other-k.pem");
    await execFileP("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1", "-keyout", key, "-out", cert]);
    await execFileP("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other", "-days", "1", "-keyout", otherKey, "-out", path.join(dir, "other-c.pem")]);
    await writeFile(path.join(dir, "garbage.pem"), "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n");
    await writeFile(path.join(dir, "text.pem"), "hello, I am not a certificate\n");
  });

  it("--tls-cert/--tls-key: serves HTTPS (and not plain HTTP) on the port", async () => {
    const l = await startListen(["--tls-cert", cert, "--tls-key", key]);
    perTest.push(l);
    expect(l.logs().some((x) => /point Alertmanager at https:\/\//.test(String(x.msg)))).toBe(true);
    const base = `https://127.0.0.1:${l.port}`;

    const insecure = new Agent({ connect: { rejectUnauthorized: false } });
    try {
      const health = await undiciFetch(`${base}/healthz`, { dispatcher: insecure });
      expect(health.status).toBe(200);
      const post = await undiciFetch(`${base}/api/alerts`, { dispatcher: insecure, method: "POST", body: JSON.stringify(webhookBody("OverTls")), headers: { "content-type": "application/json" } });
      expect(post.status, await post.clone().text()).toBe(202);
      await l.waitForStdout(/OverTls/);
    } finally {
      await insecure.close();
    }

    // With the certificate as the CA, the server verifies (same bytes as the file given).
    const ca = await readFile(cert);
    const verified = await new Promise<{ status: number; authorized: boolean; peerCert: string }>((resolve, reject) => {
      const req = https.get({ host: "127.0.0.1", port: l.port, path: "/healthz", ca, servername: "localhost", agent: false }, (res) => {
        const sock = res.socket as import("node:tls").TLSSocket;
        resolve({ status: res.statusCode ?? 0, authorized: sock.authorized, peerCert: String(sock.getPeerCertificate().subject?.CN ?? "") });
        res.resume();
      });
      req.on("error", reject);
    });
    expect(verified).toEqual({ status: 200, authorized: true, peerCert: "localhost" });

    // Plain HTTP on the TLS port is not served.
    let plain: string;
    try {
      plain = String((await request(`http://127.0.0.1:${l.port}/healthz`, { timeoutMs: 10_000 })).status);
    } catch {
      plain = "refused";
    }
    expect(plain).not.toBe("200");
    expect(l.proc.exitCode).toBeNull();
  });

  const expectUsageError = (r: RunResult, message: RegExp): void => {
    expect(r.code, r.stderr).toBe(2);
    // Structured log lines written before the failure (e.g. "no Kubernetes credentials") are not the error report.
    const lines = r.stderr.trimEnd().split("\n").filter((x) => !x.startsWith('{"level":'));
    expect(lines[0]).toMatch(/^kubecano: /);
    expect(lines[0]).toMatch(message);
    // One line, optionally a hint: never a stack trace.
    expect(lines.length, r.stderr).toBeLessThanOrEqual(2);
    if (lines.length === 2) expect(lines[1]).toMatch(/^ {2}hint: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe("");
  };

  it("--tls-cert without --tls-key (and the reverse): exit 2 with a hint", async () => {
    const noKey = await runCli(["listen", "--port", "0", "--tls-cert", cert]);
    expectUsageError(noKey, /TLS needs both a certificate and a key/);
    expect(noKey.stderr).toMatch(/hint: .*--tls-key/);
    const noCert = await runCli(["listen", "--port", "0", "--tls-key", key]);
    expectUsageError(noCert, /TLS needs both a certificate and a key/);
  });

  it.each([
    ["a garbage certificate", "garbage.pem", "k.pem", /cannot serve TLS/],
    ["a text file as certificate", "text.pem", "k.pem", /cannot serve TLS/],
    ["a certificate as the key", "c.pem", "c.pem", /cannot serve TLS/],
    ["a text file as the key", "c.pem", "text.pem", /cannot serve TLS/],
    ["a key that does not belong to the certificate", "c.pem", "other-k.pem", /cannot serve TLS/],
    ["a missing certificate file", "missing.pem", "k.pem", /cannot read the TLS certificate .*missing\.pem: ENOENT/],
    ["a missing key file", "c.pem", "missing.pem", /cannot read the TLS key .*missing\.pem: ENOENT/],
  ])("%s: exit 2 with a one-line message", async (_name, c, k, message) => {
    const r = await runCli(["listen", "--host", "127.0.0.1", "--port", "0", "--tls-cert", path.join(dir, c), "--tls-key", path.join(dir, k)]);
    expectUsageError(r, message);
  });
});
