/**
 * End-to-end tests of the built CLI (bin/kubecano → dist/): every test runs
 * real processes on 127.0.0.1 with port 0 and its own temp dirs, so this file
 * runs in parallel with any other test file.
 */
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startSlackFake } from "../fakes/slack.js";
import {
  PACKAGE_VERSION,
  REPO_ROOT,
  eventually,
  makeTempDir,
  postAlerts,
  removeTempDir,
  request,
  runCli,
  startListen,
  stopAllChildren,
  tempDirWith,
  type HttpReply,
  type Listener,
  type ListenOptions,
} from "../helpers/cli.js";

type Fixture = { body: Record<string, unknown> & { alerts: Record<string, unknown>[] } };
const fixture = (name: string): Fixture =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, "test", "fixtures", "alertmanager", name), "utf8")) as Fixture;
const FIRING = fixture("firing-crashloop.json").body;
const RESOLVED = fixture("resolved-crashloop.json").body;

let variant = 0;
/** The firing fixture as a new alert (own pod, fingerprint and start): never a repeat of an earlier one. */
function uniqueFiring(): Fixture["body"] {
  const n = ++variant;
  const body = structuredClone(FIRING);
  const alert = body.alerts[0]!;
  (alert["labels"] as Record<string, string>)["pod"] = `api-e2e-${n}`;
  alert["fingerprint"] = `e2e${n.toString(16).padStart(13, "0")}`;
  alert["startsAt"] = new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
  return body;
}

// Each test starts processes on a shared two-core machine: room for slow starts.
vi.setConfig({ testTimeout: 90_000, hookTimeout: 90_000 });

const tempDirs: string[] = [];
async function cwdWith(files: Record<string, string>): Promise<string> {
  const dir = await tempDirWith(files);
  tempDirs.push(dir);
  return dir;
}
async function emptyDir(): Promise<string> {
  const dir = await makeTempDir();
  tempDirs.push(dir);
  return dir;
}

const perTest: Listener[] = [];
/** A listener stopped after the current test, pass or fail. */
async function listen(args: readonly string[] = [], opts: ListenOptions = {}): Promise<Listener> {
  const l = await startListen(args, opts);
  perTest.push(l);
  return l;
}

afterEach(async () => {
  await Promise.all(perTest.splice(0).map((l) => l.stop("SIGKILL")));
});
afterAll(async () => {
  await stopAllChildren();
  await Promise.all(tempDirs.splice(0).map(removeTempDir));
});

function errorOf(r: HttpReply): string {
  const body = r.json<{ status?: string; error?: string }>();
  expect(body.status).toBe("error");
  expect(typeof body.error).toBe("string");
  return body.error!;
}

/** One HTTP/1.1 request written by hand: headers first, then the chunks; resolves at the response. */
function rawRequest(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; chunks?: readonly Buffer[]; end?: boolean },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? "POST", headers: opts.headers, agent: false });
    let settled = false;
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
        req.destroy();
      });
    });
    req.on("error", (e) => {
      if (!settled) reject(e);
    });
    req.flushHeaders();
    for (const c of opts.chunks ?? []) req.write(c);
    if (opts.end !== false) req.end();
  });
}

/** Sum of a Prometheus text-format sample whose labels include `labels`. */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    found = true;
  }
  return found ? sum : Number.NaN;
}

describe("kubecano --version and --help", () => {
  it("--version and -V print the package.json version", async () => {
    for (const flag of ["--version", "-V"]) {
      const r = await runCli([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(PACKAGE_VERSION);
    }
  });

  it("the top-level help and every command's help show examples", async () => {
    const top = await runCli(["--help"]);
    expect(top.code, top.stderr).toBe(0);
    expect(top.stdout).toMatch(/Examples:\n\s+\$ kubecano /);
    const commandsSection = /\nCommands:\n([\s\S]*?)(\n\n|$)/.exec(top.stdout)?.[1] ?? "";
    const commands = [...commandsSection.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((c) => c !== "help");
    // The commands of this stage at least; later ones are checked as they appear.
    expect(commands).toEqual(expect.arrayContaining(["listen", "test-destination", "config"]));
    for (const cmd of commands) {
      const r = await runCli([cmd, "--help"]);
      expect(r.code, `${cmd} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout, `${cmd} --help`).toMatch(new RegExp(`Examples:\\n\\s+\\$ (\\S+=\\S+ )?kubecano ${cmd}`));
    }
  });

  it("an unknown command is a usage error (exit 2) with a suggestion", async () => {
    const r = await runCli(["lsiten"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'lsiten'/);
    expect(r.stderr).toMatch(/listen/);
  });
});

describe("module loading stays lazy", () => {
  /**
   * A resolve hook (module.register, Node ≥ 20.6) writes every specifier the
   * CLI's ESM graph resolves, with the URL it resolved to, to a file.
   */
  async function traceModules(args: readonly string[], cwd?: string): Promise<{ code: number | null; stderr: string; resolved: { specifier: string; url: string }[] }> {
    const dir = await emptyDir();
    const trace = path.join(dir, "resolved.ndjson");
    await writeFile(trace, "");
    await writeFile(
      path.join(dir, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";
let out;
export async function initialize(data) { out = data.out; }
export async function resolve(specifier, context, nextResolve) {
  const r = await nextResolve(specifier, context);
  appendFileSync(out, JSON.stringify({ specifier, url: r.url }) + "\\n");
  return r;
}
`,
    );
    await writeFile(
      path.join(dir, "register.mjs"),
      `import { register } from "node:module";
register("./hooks.mjs", import.meta.url, { data: { out: ${JSON.stringify(trace)} } });
`,
    );
    const r = await runCli(args, { nodeArgs: ["--import", pathToFileURL(path.join(dir, "register.mjs")).href], ...(cwd !== undefined ? { cwd } : {}) });
    const resolved = (await readFile(trace, "utf8"))
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { specifier: string; url: string });
    return { code: r.code, stderr: r.stderr, resolved };
  }

  const HEAVY: readonly [string, RegExp][] = [
    ["@slack/*", /(^|\/node_modules\/)@slack\//],
    ["ink", /(^|\/node_modules\/)ink(\/|$)/],
    ["react", /(^|\/node_modules\/)react(-dom)?(\/|$)/],
    ["@kubernetes/*", /(^|\/node_modules\/)@kubernetes\//],
  ];
  const heavyIn = (resolved: { specifier: string; url: string }[]): string[] =>
    HEAVY.filter(([, re]) => resolved.some((r) => re.test(r.specifier) || re.test(r.url))).map(([name]) => name);

  it("kubecano --version loads neither the Slack client, ink/react nor the Kubernetes client", async () => {
    const { code, stderr, resolved } = await traceModules(["--version"]);
    expect(code, stderr).toBe(0);
    // The hook saw the CLI itself: the trace is real.
    expect(resolved.some((r) => r.url.endsWith("/dist/cli.js"))).toBe(true);
    expect(resolved.some((r) => r.specifier === "commander")).toBe(true);
    expect(heavyIn(resolved)).toEqual([]);
  });

  it("kubecano config validate of a Slack config does not load the Slack client", async () => {
    const cwd = await cwdWith({
      "kubecano.config.yaml": "destinations:\n  - name: slack-main\n    type: slack\n    params:\n      token: xoxb-not-a-real-token\n      channel: C0123456\n",
    });
    const { code, stderr, resolved } = await traceModules(["config", "validate"], cwd);
    expect(code, stderr).toBe(0);
    expect(resolved.some((r) => r.url.endsWith("/dist/commands/config.js"))).toBe(true);
    expect(heavyIn(resolved)).toEqual([]);
  });
});

describe("kubecano listen on the embedded default", () => {
  it("prints a POSTed firing Issue and its resolution on stdout", async () => {
    const l = await listen([], { cwd: await emptyDir() });
    const startup = l.logs().find((x) => /listening/.test(x.msg ?? ""));
    expect(startup?.["config"]).toMatch(/embedded default/);
    expect(startup?.["destinations"]).toBe("console (console)");

    const r = await postAlerts(l.url, FIRING);
    expect(r.status, r.text).toBe(202);
    expect(r.json()).toMatchObject({ status: "accepted", alerts: 1, issues: 1, deliveries: 1 });
    const out = await l.waitForStdout(/FIRING.*Pod is crash looping\./);
    expect(out).toMatch(/FIRING\s+LOW\s+Pod is crash looping\./);
    expect(out).toContain("KubePodCrashLooping");
    expect(out).toContain("shop/pod/api-7d9f");
    expect(out).toContain("http://vm:19093/#/silences/new?filter=");
    expect(out).toContain("fingerprint 0a732576aaf8ce3c");
    // Not a terminal, NO_COLOR set: no escape codes.
    expect(out).not.toContain("\u001b[");

    const r2 = await postAlerts(l.url, RESOLVED);
    expect(r2.status, r2.text).toBe(202);
    await l.waitForStdout(/RESOLVED\s+LOW\s+Pod is crash looping\./);
  });

  it("answers health, readiness and metrics", async () => {
    const l = await listen([], { cwd: await emptyDir() });
    for (const p of ["/healthz", "/livez"]) {
      const r = await request(`${l.url}${p}`);
      expect(r.status, p).toBe(200);
      expect(r.json()).toEqual({ status: "ok" });
    }
    const head = await request(`${l.url}/healthz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
    const ready = await request(`${l.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: "ready" });

    expect((await postAlerts(l.url, FIRING)).status).toBe(202);
    expect((await postAlerts(l.url, "{nope")).status).toBe(400);
    await l.waitForStdout(/FIRING/);

    const m = await request(`${l.url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(m.text).toContain("# TYPE kubecano_alerts_received_total counter");
    expect(metricValue(m.text, "kubecano_alerts_received_total", { source: "alertmanager" })).toBe(1);
    expect(metricValue(m.text, "kubecano_rejected_payloads_total", { reason: "json" })).toBe(1);
    expect(metricValue(m.text, "kubecano_http_requests_total", { route: "alerts", code: "202" })).toBe(1);
    expect(metricValue(m.text, "kubecano_http_requests_total", { route: "alerts", code: "400" })).toBe(1);
    expect(metricValue(m.text, "kubecano_issues_created_total", { source: "prometheus", severity: "LOW" })).toBe(1);
    // The console delivery finished before its output appeared.
    expect(metricValue(m.text, "kubecano_deliveries_total", { destination: "console", outcome: "success" })).toBe(1);
    expect(m.text).toContain("kubecano_process_cpu_seconds_total");
  });

  it("exits 0 on SIGTERM after logging the drain", async () => {
    const l = await listen([], { cwd: await emptyDir() });
    expect((await postAlerts(l.url, FIRING)).status).toBe(202);
    await l.waitForStdout(/FIRING/);
    const code = await l.stop("SIGTERM");
    expect(code, l.stderr()).toBe(0);
    const msgs = l.logs().map((x) => x.msg ?? "");
    expect(msgs.some((m) => /shutting down.*draining/.test(m))).toBe(true);
    expect(msgs.some((m) => /all deliveries finished/.test(m))).toBe(true);
    expect(l.logs().find((x) => /shutting down/.test(x.msg ?? ""))?.["signal"]).toBe("SIGTERM");
  });

  it("a port in use: exit 1 with one line and a hint", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = blocker.address() as net.AddressInfo;
      const r = await runCli(["listen", "--host", "127.0.0.1", "--port", String(port), "--log-format", "json"], { cwd: await emptyDir() });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^kubecano: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use$`, "m"));
      expect(r.stderr).toMatch(/^ {2}hint: .*--port/m);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).toBe("");
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("a bad config: exit 2 naming the file, the key path and what is wrong", async () => {
    const cwd = await cwdWith({
      "kubecano.config.yaml": 'clusterName: prod\nserver:\n  port: "eighty"\ndelivery:\n  maxBaclog: 3\n',
    });
    const r = await runCli(["listen", "--port", "0", "--host", "127.0.0.1"], { cwd });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^kubecano: invalid config in kubecano\.config\.yaml$/m);
    expect(r.stderr).toMatch(/^ {2}- kubecano\.config\.yaml:3: server\.port: expected number, received string$/m);
    expect(r.stderr).toMatch(/^ {2}- kubecano\.config\.yaml:5: delivery\.maxBaclog: unknown key "maxBaclog"$/m);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it("a config file that is not valid YAML: exit 2 with file, line and column", async () => {
    const cwd = await cwdWith({ "kubecano.config.yaml": "server:\n  port: [8080\n" });
    const r = await runCli(["listen"], { cwd });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^kubecano: invalid YAML in \S*kubecano\.config\.yaml:\d+:\d+: /m);
  });
});

describe("kubecano listen: every bad request gets its answer and the server keeps serving", () => {
  const TOKEN = "e2e-bearer-token-0123456789";
  let l: Listener;
  beforeAll(async () => {
    const cwd = await cwdWith({
      "kubecano.config.yaml": `server:\n  maxBodyBytes: 4096\n  auth:\n    bearerToken: ${TOKEN}\n`,
    });
    l = await startListen([], { cwd });
  });
  afterAll(async () => {
    await l?.stop("SIGKILL");
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const post = (body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> => postAlerts(l.url, body, { ...auth, ...headers });
  const stillServing = async (): Promise<void> => {
    const r = await post(uniqueFiring());
    expect(r.status, r.text).toBe(202);
  };

  it("401 without credentials, with a wrong bearer token and with basic auth", async () => {
    const none = await postAlerts(l.url, FIRING);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(errorOf(none)).toMatch(/authentication required/);
    await stillServing();

    const wrong = await postAlerts(l.url, FIRING, { authorization: `Bearer ${TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(errorOf(wrong)).toMatch(/invalid credentials/);
    expect(wrong.text).not.toContain(TOKEN);
    await stillServing();

    const basic = await postAlerts(l.url, FIRING, { authorization: `Basic ${Buffer.from(`am:${TOKEN}`).toString("base64")}` });
    expect(basic.status).toBe(401);
    await stillServing();

    // Health and metrics stay open.
    expect((await request(`${l.url}/healthz`)).status).toBe(200);
  });

  it("400 for invalid JSON, naming the line and column", async () => {
    const r = await post('{\n  "alerts": [\n    { "status": "firing", }\n  ]\n}');
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(/^invalid JSON at line 3 column \d+/);
    await stillServing();

    const empty = await post("");
    expect(empty.status).toBe(400);
    expect(errorOf(empty)).toMatch(/empty/);
    await stillServing();
  });

  it("400 for a schema failure, naming the field path", async () => {
    const bad = structuredClone(FIRING);
    (bad.alerts[0]!["labels"] as Record<string, unknown>)["severity"] = 5;
    const r = await post(bad);
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(/alerts\[0\]\.labels\.severity: expected string, received number/);
    await stillServing();

    const noAlerts = await post({ version: "4", status: "firing" });
    expect(noAlerts.status).toBe(400);
    expect(errorOf(noAlerts)).toMatch(/^alerts: is required/);
    await stillServing();
  });

  it("400 for a body that is not valid UTF-8", async () => {
    const body = Buffer.concat([Buffer.from('{"alerts": [], "note": "'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('"}')]);
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(/not valid UTF-8.*offset 24/);
    await stillServing();
  });

  it("413 over server.maxBodyBytes, declared with Content-Length", async () => {
    const r = await rawRequest(`${l.url}/api/alerts`, {
      headers: { ...auth, "content-type": "application/json", "content-length": "100000" },
      chunks: [Buffer.from('{"alerts": [')],
      end: false,
    });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text)).toMatchObject({ status: "error", error: expect.stringMatching(/maxBodyBytes \(4096 bytes\)/) });
    await stillServing();
  });

  it("413 over server.maxBodyBytes, sent chunked", async () => {
    const r = await rawRequest(`${l.url}/api/alerts`, {
      headers: { ...auth, "content-type": "application/json", "transfer-encoding": "chunked" },
      chunks: [Buffer.from(`{"alerts": [], "pad": "${"x".repeat(8192)}"}`)],
      end: false,
    });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text)).toMatchObject({ status: "error", error: expect.stringMatching(/maxBodyBytes/) });
    await stillServing();
  });

  it("415 for a body that is not JSON", async () => {
    const text = await post("alertname=Foo", { "content-type": "text/plain" });
    expect(text.status).toBe(415);
    expect(errorOf(text)).toMatch(/unsupported content type "text\/plain".*application\/json/);
    await stillServing();

    // What `curl -d` sends by default.
    const form = await post(JSON.stringify(FIRING), { "content-type": "application/x-www-form-urlencoded" });
    expect(form.status).toBe(415);
    await stillServing();
  });

  it("404 for an unknown path, 405 for a wrong method", async () => {
    const nf = await request(`${l.url}/api/alert`, { method: "POST", body: "{}", headers: { ...auth, "content-type": "application/json" } });
    expect(nf.status).toBe(404);
    expect(errorOf(nf)).toMatch(/POST to \/api\/alerts/);
    await stillServing();

    const get = await request(`${l.url}/api/alerts`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    await stillServing();

    const postHealth = await request(`${l.url}/healthz`, { method: "POST", body: "" });
    expect(postHealth.status).toBe(405);
    await stillServing();
  });

  it("a malformed HTTP request is refused without harming the server", async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(l.port, "127.0.0.1", () => s.write("THIS IS NOT HTTP\r\n\r\n"));
      let data = "";
      s.setEncoding("utf8");
      s.on("data", (d: string) => (data += d));
      s.on("close", () => resolve(data));
      s.on("error", reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    await stillServing();
  });

  it("the metrics count each refusal by reason", async () => {
    const REASONS = ["auth", "json", "schema", "encoding", "too_large", "content_type"] as const;
    const counts = async (): Promise<Record<string, number>> => {
      const text = (await request(`${l.url}/metrics`)).text;
      return Object.fromEntries(REASONS.map((r) => [r, metricValue(text, "kubecano_rejected_payloads_total", { reason: r }) || 0]));
    };
    const before = await counts();
    expect((await postAlerts(l.url, FIRING)).status).toBe(401);
    expect((await post("{")).status).toBe(400);
    expect((await post({ alerts: "none" })).status).toBe(400);
    expect((await post(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))).status).toBe(400);
    expect((await post("{}", { "content-type": "text/plain" })).status).toBe(415);
    const big = await rawRequest(`${l.url}/api/alerts`, { headers: { ...auth, "content-type": "application/json", "content-length": "5000" }, end: false });
    expect(big.status).toBe(413);
    const after = await counts();
    for (const r of REASONS) expect(after[r]! - before[r]!, r).toBe(1);
    await stillServing();
  });
});

describe("kubecano listen with basic auth", () => {
  it("401 without, with wrong and with bearer credentials; 202 with the right ones", async () => {
    const cwd = await cwdWith({ "kubecano.config.yaml": "server:\n  auth:\n    basic:\n      username: alertmanager\n      password: e2e-basic-password\n" });
    const l = await listen([], { cwd });
    const basic = (u: string, p: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}` });

    const none = await postAlerts(l.url, FIRING);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Basic realm="kubecano"/);
    await expectStillServingWith(l, basic("alertmanager", "e2e-basic-password"));

    expect((await postAlerts(l.url, FIRING, basic("alertmanager", "wrong-password"))).status).toBe(401);
    expect((await postAlerts(l.url, FIRING, basic("someone", "e2e-basic-password"))).status).toBe(401);
    expect((await postAlerts(l.url, FIRING, { authorization: "Bearer e2e-basic-password" })).status).toBe(401);
    await expectStillServingWith(l, basic("alertmanager", "e2e-basic-password"));
    // The scheme is case-insensitive.
    await expectStillServingWith(l, { authorization: basic("alertmanager", "e2e-basic-password")["authorization"]!.replace("Basic", "basic") });
  });

  async function expectStillServingWith(l: Listener, headers: Record<string, string>): Promise<void> {
    const r = await postAlerts(l.url, uniqueFiring(), headers);
    expect(r.status, r.text).toBe(202);
  }
});

describe("kubecano listen when the delivery backlog is full", () => {
  it("answers 503 with Retry-After, keeps answering, and accepts again once the backlog drains", async () => {
    const slack = await startSlackFake();
    try {
      // The Slack incoming webhook holds every post until released.
      const hang = slack.hang({ method: "webhook" });
      const webhookUrl = slack.webhookUrl();
      const cwd = await cwdWith({
        "kubecano.config.yaml": [
          "delivery:",
          "  maxBacklog: 1",
          "  attemptTimeout: 10m",
          "destinations:",
          "  - name: slow-slack",
          "    type: slack",
          "    params:",
          "      webhook_url: ${SLACK_WEBHOOK_URL}",
          "      timeout: 10m",
          "",
        ].join("\n"),
      });
      const l = await listen([], { cwd, env: { SLACK_WEBHOOK_URL: webhookUrl } });
      const first = await postAlerts(l.url, uniqueFiring());
      expect(first.status, first.text).toBe(202);
      await eventually(() => hang.waiting === 1, "the Slack fake to hold the first delivery");

      const full = await postAlerts(l.url, uniqueFiring());
      expect(full.status, full.text).toBe(503);
      expect(full.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(Number(full.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(errorOf(full)).toMatch(/backlog is full/);
      // Still answering: health, and 503 again rather than a hang.
      expect((await request(`${l.url}/healthz`)).status).toBe(200);
      expect((await postAlerts(l.url, uniqueFiring())).status).toBe(503);

      hang.release();
      await eventually(async () => {
        const m = await request(`${l.url}/metrics`);
        return metricValue(m.text, "kubecano_deliveries_total", { destination: "slow-slack", outcome: "success" }) === 1;
      }, "the held delivery to succeed");
      const again = await postAlerts(l.url, uniqueFiring());
      expect(again.status, again.text).toBe(202);
      const m = await request(`${l.url}/metrics`);
      expect(metricValue(m.text, "kubecano_rejected_payloads_total", { reason: "backlog_full" })).toBe(2);
      expect(await l.stop("SIGTERM")).toBe(0);
      // Both accepted Issues reached the channel, each passing the fake's limit checks.
      expect(slack.callsTo("webhook").map((c) => c.outcome)).toEqual(["ok", "ok"]);
      expect(l.stderr()).not.toContain(new URL(webhookUrl).pathname);
    } finally {
      await slack.close();
    }
  });
});

describe("kubecano listen shutdown", () => {
  it("a second SIGTERM skips the rest of the grace period and keeps what is not delivered", async () => {
    const slack = await startSlackFake();
    try {
      const hang = slack.hang({ method: "webhook" });
      const cwd = await cwdWith({
        "kubecano.config.yaml": ["delivery:", "  attemptTimeout: 10m", "destinations:", "  - name: slow-slack", "    type: slack", "    params:", "      webhook_url: ${SLACK_WEBHOOK_URL}", "      timeout: 10m", ""].join("\n"),
      });
      // A grace period longer than the test: only the second signal can end it in time.
      const l = await listen(["--shutdown-grace", "10m"], { cwd, env: { SLACK_WEBHOOK_URL: slack.webhookUrl() } });
      expect((await postAlerts(l.url, uniqueFiring())).status).toBe(202);
      await eventually(() => hang.waiting === 1, "the Slack fake to hold the delivery");
      l.proc.kill("SIGTERM");
      await l.waitForLog((line) => /shutting down/.test(String(line.msg)));
      l.proc.kill("SIGTERM");
      expect(await l.exited()).toBe(0);
      await l.waitForLog((line) => /stopped with 1 deliveries pending; they are kept in the state directory/.test(String(line.msg)), 1_000);
      hang.release();
    } finally {
      await slack.close();
    }
  });
});

describe("kubecano config", () => {
  const SECRET_BEARER = "e2e-server-bearer-s3cr3t-0123";
  const SECRET_SLACK = "xoxb-e2e-slack-s3cr3t-4567";
  const CONFIG = [
    "clusterName: e2e",
    "server:",
    "  auth:",
    "    bearerToken: ${KC_E2E_BEARER}",
    "destinations:",
    "  - name: slack-main",
    "    type: slack",
    "    params:",
    "      token: ${KC_E2E_SLACK_TOKEN}",
    "      channel: C0E2E0001",
    "  - name: terminal",
    "    type: console",
    "",
  ].join("\n");
  const env = { KC_E2E_BEARER: SECRET_BEARER, KC_E2E_SLACK_TOKEN: SECRET_SLACK };

  it("validate: exit 0 for a valid config, 1 for an invalid one", async () => {
    const ok = await runCli(["config", "validate"], { cwd: await cwdWith({ "kubecano.config.yaml": CONFIG }), env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/config is valid: \S*kubecano\.config\.yaml$/m);
    expect(ok.stdout).toMatch(/slack-main \(slack\), terminal \(console\)/);

    const bad = await runCli(["config", "validate"], { cwd: await cwdWith({ "kubecano.config.yaml": "destinations:\n  - name: x\n    type: carrier-pigeon\n" }) });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/kubecano\.config\.yaml:\d+: destinations\[0\](\.type)?: unknown destination type/);
  });

  it("validate with --config names a missing file", async () => {
    const r = await runCli(["config", "validate", "--config", "nope.yaml"], { cwd: await emptyDir() });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/config file not found: \S*nope\.yaml/);
  });

  it("print expands ${VARS} and redacts secrets, in YAML and JSON", async () => {
    const cwd = await cwdWith({ "kubecano.config.yaml": CONFIG });
    const yaml = await runCli(["config", "print"], { cwd, env });
    expect(yaml.code, yaml.stderr).toBe(0);
    expect(yaml.stdout).not.toContain(SECRET_BEARER);
    expect(yaml.stdout).not.toContain(SECRET_SLACK);
    expect(yaml.stdout).toContain("[REDACTED]");
    expect(yaml.stdout).toContain("C0E2E0001");
    expect(yaml.stdout).toMatch(/clusterName: e2e/);

    const json = await runCli(["config", "print", "--json"], { cwd, env });
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).not.toContain(SECRET_BEARER);
    expect(json.stdout).not.toContain(SECRET_SLACK);
    const printed = JSON.parse(json.stdout) as { server: { auth: { bearerToken: string } }; destinations: { name: string; params: Record<string, unknown> }[] };
    expect(printed.server.auth.bearerToken).toBe("[REDACTED]");
    expect(printed.destinations.find((d) => d.name === "slack-main")?.params["token"]).toBe("[REDACTED]");
  });

  it("print names an unset ${VAR} with its key path (exit 2)", async () => {
    const cwd = await cwdWith({ "kubecano.config.yaml": CONFIG });
    const r = await runCli(["config", "print"], { cwd, env: { KC_E2E_BEARER: SECRET_BEARER, KC_E2E_SLACK_TOKEN: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/kubecano\.config\.yaml:\d+: destinations\[0\]\.params\.token: environment variable KC_E2E_SLACK_TOKEN is not set/);
    expect(r.stdout).toBe("");
  });

  it("schema prints a JSON Schema of the config", async () => {
    const r = await runCli(["config", "schema"]);
    expect(r.code, r.stderr).toBe(0);
    const schema = JSON.parse(r.stdout) as { type?: string; properties?: Record<string, unknown> };
    expect(schema.type).toBe("object");
    expect(Object.keys(schema.properties ?? {})).toEqual(expect.arrayContaining(["server", "delivery", "destinations", "clusterName"]));
  });
});

describe("kubecano test-destination", () => {
  it("sends a test Issue to the console destination (exit 0)", async () => {
    const r = await runCli(["test-destination", "console"], { cwd: await emptyDir() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("kubecano test notification: please ignore");
    expect(r.stdout).toMatch(/✔ console\s+printed to stdout/);
    expect(r.stdout).toMatch(/all 1 destination ok/);
  });

  it("--json reports each result", async () => {
    const r = await runCli(["test-destination", "--json", "--config", "k.yaml"], {
      cwd: await cwdWith({ "k.yaml": "destinations:\n  - name: err-console\n    type: console\n    params:\n      output: stderr\n" }),
    });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; results: { destination: string; ok: boolean }[] };
    expect(report.ok).toBe(true);
    expect(report.results).toEqual([expect.objectContaining({ destination: "err-console", ok: true })]);
    expect(r.stderr).toContain("kubecano test notification: please ignore");
  });

  it("an unknown destination name is a usage error (exit 2) listing the configured ones", async () => {
    const r = await runCli(["test-destination", "nope"], { cwd: await emptyDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^kubecano: unknown destination: nope$/m);
    expect(r.stderr).toMatch(/hint: configured destinations: console/);
    expect(r.stdout).toBe("");
  });
});
