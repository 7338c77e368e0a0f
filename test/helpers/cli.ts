import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Runs the built kubecano CLI (bin/kubecano → dist/) as a child process, the
 * way a user or Alertmanager meets it. Every child is tracked: tests call
 * `stopAllChildren()` in afterEach/afterAll, and a process "exit" hook kills
 * whatever is left, so a failing test never leaves a server behind.
 */

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = path.join(REPO_ROOT, "bin", "kubecano");
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

/** Generous: two cores shared with other test files that also start processes. */
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface CliEnv {
  readonly [name: string]: string | undefined;
}

export interface RunOptions {
  /** Added to a clean environment; `undefined` removes a variable. */
  readonly env?: CliEnv;
  /** Default: a fresh empty temp dir (removed at exit), so no config file is found by accident. */
  readonly cwd?: string;
  /** Written to stdin, which is then closed. */
  readonly input?: string | Buffer;
  readonly timeoutMs?: number;
  /** Arguments for node itself, before bin/kubecano (e.g. --import). */
  readonly nodeArgs?: readonly string[];
  /** Run the child as this user (root only; e.g. nobody, 65534, so that file permissions apply). */
  readonly user?: SpawnUser;
}

export interface SpawnUser {
  readonly uid: number;
  readonly gid: number;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();

process.once("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** Throws a clear error when dist/ has not been built (the tests run the built CLI). */
export function assertBuilt(): void {
  if (!existsSync(path.join(REPO_ROOT, "dist", "cli.js"))) {
    throw new Error("dist/cli.js is missing: the end-to-end tests run the built CLI, run `npm run build` first (npm test does)");
  }
}

/** A fresh temp dir; pass it to removeTempDir (or use withTempDir) when done. */
export function makeTempDir(prefix = "kubecano-e2e-"): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Writes `files` (name → content) into a fresh temp dir and returns its path. */
export async function tempDirWith(files: Readonly<Record<string, string>>, prefix?: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return dir;
}

/**
 * The environment children get: the parent's, minus what would change
 * kubecano's behaviour. `stateDir` becomes KUBECANO_STATE_DIR (tests run in
 * parallel and must not share the durable queue); `extra` wins over both.
 */
export function cliEnv(extra: CliEnv = {}, stateDir?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
  for (const k of ["KUBECANO_CONFIG", "KUBECANO_LOG_LEVEL", "KUBECANO_LOG_FORMAT", "KUBECANO_STATE_DIR", "FORCE_COLOR", "NODE_OPTIONS", "XDG_STATE_HOME"]) delete env[k];
  if (stateDir !== undefined) env["KUBECANO_STATE_DIR"] = stateDir;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Spawns node bin/kubecano. Unless the test passes its own cwd and
 * KUBECANO_STATE_DIR (to restart on the same state), each child gets a fresh
 * empty cwd and state directory, removed when it exits.
 */
function spawnCli(args: readonly string[], opts: Omit<RunOptions, "input" | "timeoutMs">): ChildProcess {
  assertBuilt();
  const ownState = opts.env !== undefined && "KUBECANO_STATE_DIR" in opts.env ? undefined : mkdtempSync(path.join(os.tmpdir(), "kubecano-e2e-state-"));
  const ownCwd = opts.cwd === undefined ? mkdtempSync(path.join(os.tmpdir(), "kubecano-e2e-cwd-")) : undefined;
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, ...args], {
    cwd: opts.cwd ?? ownCwd,
    env: cliEnv(opts.env, ownState),
    stdio: ["pipe", "pipe", "pipe"],
    ...(opts.user !== undefined ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
  });
  children.add(child);
  const forget = (): void => {
    children.delete(child);
    for (const dir of [ownState, ownCwd]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  child.once("close", forget);
  child.once("error", forget);
  return child;
}

/** Runs `kubecano ...args` to completion. Rejects only when it does not finish in time. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `kubecano ${args.join(" ")} did not finish within ${timeoutMs} ms\n--- stdout ---\n${Buffer.concat(out).toString()}\n--- stderr ---\n${Buffer.concat(err).toString()}`,
        ),
      );
    }, timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // "close" (not "exit"): stdout and stderr are complete by then.
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(opts.input);
  });
}

export type LogLine = Record<string, unknown> & { readonly level?: string; readonly msg?: string };
export type TextMatcher = RegExp | ((text: string) => boolean);

export interface Listener {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** stderr's JSON log lines, parsed (other lines are skipped). */
  logs(): LogLine[];
  /** Resolves with stdout once it matches; rejects on timeout or exit. */
  waitForStdout(match: TextMatcher, timeoutMs?: number): Promise<string>;
  /** Resolves with the first log line (from now or before) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code (null when killed by a signal). */
  exited(): Promise<number | null>;
  /** Sends `signal` (SIGTERM) and resolves with the exit code; SIGKILLs after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export interface ListenOptions {
  readonly env?: CliEnv;
  readonly cwd?: string;
  /** How long to wait for the "listening" log line. */
  readonly timeoutMs?: number;
  /** Run the child as this user (root only); give it a `cwd` and KUBECANO_STATE_DIR it can use. */
  readonly user?: SpawnUser;
}

/**
 * Starts `kubecano listen --host 127.0.0.1 --port 0 --log-format json ...args`
 * and resolves once its "listening" log line says which port it bound.
 * `args` come last, so they can override the defaults.
 */
export function startListen(args: readonly string[] = [], opts: ListenOptions = {}): Promise<Listener> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const child = spawnCli(["listen", "--host", "127.0.0.1", "--port", "0", "--log-format", "json", ...args], opts);
  let out = "";
  let err = "";
  const parsed: LogLine[] = [];
  let partial = "";
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (s: string) => {
    out += s;
    notify();
  });
  child.stderr!.on("data", (s: string) => {
    err += s;
    partial += s;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) {
      if (!l.startsWith("{")) continue;
      try {
        parsed.push(JSON.parse(l) as LogLine);
      } catch {
        // not a log line
      }
    }
    notify();
  });
  let exitCode: number | null | undefined;
  const exitedP = new Promise<number | null>((resolve) => {
    child.once("close", (code) => {
      exitCode = code;
      notify();
      resolve(code);
    });
  });

  const describe = (): string => `\n--- stdout ---\n${out}\n--- stderr ---\n${err}`;

  /** Polls `check` on every output chunk and at exit; rejects on timeout or exit. */
  function waitFor<T>(check: () => T | undefined, what: string, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(tick);
      };
      const tick = (): void => {
        let v: T | undefined;
        try {
          v = check();
        } catch (e) {
          done();
          reject(e as Error);
          return;
        }
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (exitCode !== undefined) {
          done();
          reject(new Error(`kubecano exited (code ${exitCode}) before ${what}${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(tick);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}${describe()}`));
      }, ms);
      waiters.add(tick);
      tick();
    });
  }

  const matches = (m: TextMatcher, text: string): boolean => (typeof m === "function" ? m(text) : m.test(text));

  const stop = async (signal: NodeJS.Signals = "SIGTERM", ms = DEFAULT_TIMEOUT_MS): Promise<number | null> => {
    if (exitCode !== undefined) return exitCode;
    child.kill(signal);
    const killer = setTimeout(() => child.kill("SIGKILL"), ms);
    try {
      return await exitedP;
    } finally {
      clearTimeout(killer);
    }
  };

  return waitFor(
    () => parsed.find((l) => typeof l.msg === "string" && /listening/.test(l.msg) && typeof l["address"] === "string"),
    "the listening log line",
    timeoutMs,
  ).then(
    (line) => {
      const address = line["address"] as string;
      const port = Number(address.slice(address.lastIndexOf(":") + 1));
      if (!Number.isInteger(port) || port <= 0) throw new Error(`cannot read the port from address ${JSON.stringify(address)}`);
      return {
        url: `http://127.0.0.1:${port}`,
        port,
        proc: child,
        stdout: () => out,
        stderr: () => err,
        logs: () => [...parsed],
        waitForStdout: (m, ms = DEFAULT_TIMEOUT_MS) => waitFor(() => (matches(m, out) ? out : undefined), `stdout to match ${String(m)}`, ms),
        waitForLog: (m, ms = DEFAULT_TIMEOUT_MS) => waitFor(() => parsed.find(m), `a log line matching ${String(m)}`, ms),
        exited: () => exitedP,
        stop,
      } satisfies Listener;
    },
    async (e: unknown) => {
      await stop("SIGKILL");
      throw e;
    },
  );
}

/** Kills every child still running (SIGKILL after a short SIGTERM grace). For afterEach/afterAll. */
export async function stopAllChildren(graceMs = 5_000): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const t = setTimeout(() => c.kill("SIGKILL"), graceMs);
          c.once("exit", () => {
            clearTimeout(t);
            resolve();
          });
          c.kill("SIGTERM");
        }),
    ),
  );
}

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON (throws when it is not). */
  json<T = Record<string, unknown>>(): T;
}

/**
 * POSTs a webhook body to `${baseUrl}/api/alerts` (or to `baseUrl` itself when
 * it already has a path). Objects are sent as JSON; strings and buffers as
 * they are. Content-Type defaults to application/json.
 */
export async function postAlerts(baseUrl: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpReply> {
  const u = new URL(baseUrl);
  const target = u.pathname === "/" || u.pathname === "" ? new URL("/api/alerts", u).toString() : u.toString();
  const payload = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
  const hasCtype = Object.keys(headers).some((k) => k.toLowerCase() === "content-type");
  return request(target, { method: "POST", body: payload, headers: { ...(hasCtype ? {} : { "content-type": "application/json" }), ...headers } });
}

/** fetch with the body read and a timeout; for GETs of health and metrics endpoints too. */
export async function request(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<HttpReply> {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, ...rest } = init;
  const res = await fetch(url, { ...rest, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: <T>() => JSON.parse(text) as T,
  };
}

/** Polls `check` until it returns a value other than undefined/false; for conditions with no event to wait on. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError !== undefined ? `: ${String(lastError)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
