import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { stringify } from "yaml";
import { DEFAULT_TIMEOUT_MS, makeTempDir, removeTempDir } from "./cli.js";

/**
 * A real Prometheus Alertmanager (Debian's prometheus-alertmanager 0.25) for
 * end-to-end tests: one process per test with its own port, storage dir and
 * generated alertmanager.yml whose only receiver is a webhook to kubecano.
 * No gossip (--cluster.listen-address=), and 1 s group timers so a
 * notification follows an alert within a couple of seconds.
 */

export const ALERTMANAGER_BIN = process.env["KUBECANO_E2E_ALERTMANAGER_BIN"] ?? "/usr/bin/prometheus-alertmanager";
export const AMTOOL_BIN = process.env["KUBECANO_E2E_AMTOOL_BIN"] ?? "/usr/bin/amtool";

const INSTALL_HINT = "install it with `sudo apt-get install -y prometheus-alertmanager` (Debian/Ubuntu; .ci/run does this)";

export type Availability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export function alertmanagerAvailability(): Availability {
  const missing = [ALERTMANAGER_BIN, AMTOOL_BIN].filter((p) => !existsSync(p));
  return missing.length === 0 ? { ok: true } : { ok: false, reason: `${missing.join(" and ")} not found: ${INSTALL_HINT}` };
}

/**
 * Whether a test file should skip its Alertmanager tests. In CI (CI=true) a
 * missing Alertmanager is never a skip: the tests run and fail with the
 * install hint, so a broken CI image cannot pass by skipping.
 */
export function alertmanagerGate(): { readonly skip: boolean; readonly reason: string } {
  const a = alertmanagerAvailability();
  if (a.ok) return { skip: false, reason: "" };
  if (process.env["CI"] === "true") return { skip: false, reason: a.reason };
  return { skip: true, reason: a.reason };
}

export interface WebhookReceiver {
  /** kubecano's webhook URL, e.g. http://127.0.0.1:PORT/api/alerts */
  readonly url: string;
  /** Sent as `http_config.authorization` (type Bearer). */
  readonly bearerToken?: string;
  readonly sendResolved?: boolean;
}

export interface AlertmanagerOptions {
  readonly webhook: WebhookReceiver;
  /** Default: the real address, http://127.0.0.1:PORT */
  readonly externalUrl?: string;
  readonly receiverName?: string;
  readonly groupBy?: readonly string[];
  readonly timeoutMs?: number;
}

export interface TestAlert {
  readonly labels: Readonly<Record<string, string>> & { readonly alertname: string };
  readonly annotations?: Readonly<Record<string, string>>;
  readonly generatorURL?: string;
}

/** An alert as it was added: `startsAt` is kept so resolving merges into the same alert. */
export interface AddedAlert extends TestAlert {
  readonly startsAt: string;
}

export interface Alertmanager {
  /** Where kubecano tests talk to it: http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** What Alertmanager puts in webhooks as externalURL. */
  readonly externalUrl: string;
  readonly configPath: string;
  readonly proc: ChildProcess;
  /** Alertmanager's own log (stderr and stdout). */
  output(): string;
  /** Adds (fires) an alert with amtool. */
  addAlert(alert: TestAlert): Promise<AddedAlert>;
  /** Resolves an alert added before: same labels, an end time in the past. */
  resolveAlert(alert: AddedAlert): Promise<void>;
  /** Alertmanager's current (not yet resolved) alerts, with their fingerprints (GET /api/v2/alerts). */
  alerts(): Promise<AlertmanagerAlertStatus[]>;
  /** POSTs alerts to Alertmanager's own API (/api/v2/alerts), bypassing amtool. */
  postAlerts(alerts: readonly (TestAlert & { startsAt?: string; endsAt?: string })[]): Promise<void>;
  stop(): Promise<void>;
}

export interface AlertmanagerAlertStatus {
  readonly fingerprint: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly status: { readonly state: string };
}

const running = new Set<Alertmanager>();

/** Stops every Alertmanager started by this process; for afterEach/afterAll. */
export async function stopAllAlertmanagers(): Promise<void> {
  await Promise.all([...running].map((am) => am.stop()));
}

process.once("exit", () => {
  for (const am of running) if (am.proc.exitCode === null && am.proc.signalCode === null) am.proc.kill("SIGKILL");
});

/** A port that was free a moment ago (Alertmanager cannot be told to pick one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function alertmanagerConfig(opts: AlertmanagerOptions): Record<string, unknown> {
  const receiver = opts.receiverName ?? "kubecano";
  return {
    route: {
      receiver,
      group_by: [...(opts.groupBy ?? ["alertname", "namespace"])],
      group_wait: "1s",
      group_interval: "1s",
      repeat_interval: "1h",
    },
    receivers: [
      {
        name: receiver,
        webhook_configs: [
          {
            url: opts.webhook.url,
            send_resolved: opts.webhook.sendResolved ?? true,
            ...(opts.webhook.bearerToken !== undefined ? { http_config: { authorization: { type: "Bearer", credentials: opts.webhook.bearerToken } } } : {}),
          },
        ],
      },
    ],
  };
}

/** Starts Alertmanager and resolves once /-/ready answers 200. */
export async function startAlertmanager(opts: AlertmanagerOptions): Promise<Alertmanager> {
  const available = alertmanagerAvailability();
  if (!available.ok) throw new Error(`cannot start Alertmanager: ${available.reason}`);
  // The free port may be taken between the probe and the bind: try a few.
  let lastError: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      return await startOnce(opts, await freePort());
    } catch (e) {
      lastError = e;
      if (!(e instanceof PortTakenError)) throw e;
    }
  }
  throw lastError as Error;
}

class PortTakenError extends Error {}

async function startOnce(opts: AlertmanagerOptions, port: number): Promise<Alertmanager> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const dir = await makeTempDir("kubecano-e2e-am-");
  const configPath = path.join(dir, "alertmanager.yml");
  await writeFile(configPath, stringify(alertmanagerConfig(opts)));
  const url = `http://127.0.0.1:${port}`;
  const externalUrl = opts.externalUrl ?? url;
  const proc = spawn(
    ALERTMANAGER_BIN,
    [
      `--config.file=${configPath}`,
      `--storage.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.external-url=${externalUrl}`,
      "--web.route-prefix=/",
      "--cluster.listen-address=",
      "--log.level=debug",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } },
  );
  let output = "";
  proc.stdout.setEncoding("utf8").on("data", (s: string) => (output += s));
  proc.stderr.setEncoding("utf8").on("data", (s: string) => (output += s));
  let exited = false;
  const exitedP = new Promise<void>((resolve) => proc.once("close", () => ((exited = true), resolve())));
  proc.once("error", (e) => (output += `\nspawn error: ${e.message}`));

  let stopped: Promise<void> | undefined;
  const am: Alertmanager = {
    url,
    port,
    externalUrl,
    configPath,
    proc,
    output: () => output,
    addAlert: async (alert) => {
      const startsAt = rfc3339Seconds(Date.now() - 1000);
      await amtool(url, ["alert", "add", ...alertArgs(alert), `--start=${startsAt}`]);
      return { ...alert, startsAt };
    },
    resolveAlert: async (alert) => {
      // End after the start (so Alertmanager merges it into the same alert) and not in the future.
      const end = Math.max(Date.parse(alert.startsAt) + 1000, Math.floor(Date.now() / 1000) * 1000);
      await amtool(url, ["alert", "add", ...alertArgs(alert), `--start=${alert.startsAt}`, `--end=${rfc3339Seconds(end)}`]);
    },
    alerts: async () => {
      const res = await fetch(`${url}/api/v2/alerts`, { signal: AbortSignal.timeout(timeoutMs) });
      if (res.status !== 200) throw new Error(`Alertmanager GET /api/v2/alerts: HTTP ${res.status}: ${await res.text()}`);
      return (await res.json()) as AlertmanagerAlertStatus[];
    },
    postAlerts: async (alerts) => {
      const res = await fetch(`${url}/api/v2/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(alerts),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status !== 200) throw new Error(`Alertmanager refused alerts: HTTP ${res.status}: ${await res.text()}`);
    },
    stop: () => {
      stopped ??= (async () => {
        running.delete(am);
        if (!exited) {
          proc.kill("SIGTERM");
          const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
          await exitedP;
          clearTimeout(t);
        }
        await removeTempDir(dir);
      })();
      return stopped;
    },
  };
  running.add(am);

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      await am.stop();
      if (/address already in use/.test(output)) throw new PortTakenError(`port ${port} was taken`);
      throw new Error(`Alertmanager exited during start-up (${ALERTMANAGER_BIN})\n--- Alertmanager output ---\n${output}`);
    }
    const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    await res?.text().catch(() => undefined);
    if (res?.status === 200) break;
    if (Date.now() > deadline) {
      await am.stop();
      throw new Error(`Alertmanager on ${url} was not ready within ${timeoutMs} ms\n--- Alertmanager output ---\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return am;
}

function alertArgs(alert: TestAlert): string[] {
  return [
    ...Object.entries(alert.labels).map(([k, v]) => `${k}=${v}`),
    ...Object.entries(alert.annotations ?? {}).map(([k, v]) => `--annotation=${k}=${v}`),
    ...(alert.generatorURL !== undefined ? [`--generator-url=${alert.generatorURL}`] : []),
  ];
}

/** Runs amtool against one Alertmanager; rejects with its output when it fails. */
export function amtool(alertmanagerUrl: string, args: readonly string[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      AMTOOL_BIN,
      [`--alertmanager.url=${alertmanagerUrl}`, ...args],
      // HOME elsewhere: a developer's ~/.config/amtool/config.yml must not change the flags.
      { timeout: timeoutMs, env: { ...process.env, HOME: "/nonexistent" } },
      (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`amtool ${args.join(" ")} failed: ${err.message}\n${stdout}${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

/** RFC 3339 with whole seconds, as amtool parses it. */
function rfc3339Seconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}
