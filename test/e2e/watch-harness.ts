import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { assertBuilt, BIN, cliEnv, DEFAULT_TIMEOUT_MS, type CliEnv, type LogLine } from "../helpers/cli.js";

/**
 * Runs long-lived `kubecano watch` / `kubecano listen --watch` processes of
 * the built CLI for the watch end-to-end tests: stdout (NDJSON Issues with
 * `-o json`, or text) and stderr (JSON logs) are collected, and tests wait
 * on what they need. Every child is tracked and killed by `killAll()`.
 */

export interface Proc {
  readonly proc: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  logs(): LogLine[];
  /** stdout's JSON lines (`-o json`), parsed. */
  lines<T = Record<string, unknown>>(): T[];
  waitFor<T>(check: () => T | undefined | false, what: string, timeoutMs?: number): Promise<T>;
  waitForLog(match: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  exited(): Promise<number | null>;
  /** SIGTERM (or the given signal) and wait; SIGKILL after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

export function spawnKubecano(args: readonly string[], opts: { env?: CliEnv; cwd?: string } = {}): Proc {
  assertBuilt();
  const ownState = opts.env !== undefined && "KUBECANO_STATE_DIR" in opts.env ? undefined : mkdtempSync(path.join(os.tmpdir(), "kubecano-watch-state-"));
  const ownCwd = opts.cwd === undefined ? mkdtempSync(path.join(os.tmpdir(), "kubecano-watch-cwd-")) : undefined;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ownCwd, env: cliEnv(opts.env, ownState), stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  let partialOut = "";
  let partialErr = "";
  const parsedOut: unknown[] = [];
  const parsedErr: LogLine[] = [];
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };
  const split = (partial: string, chunk: string, sink: (l: string) => void): string => {
    const lines = (partial + chunk).split("\n");
    const rest = lines.pop() ?? "";
    for (const l of lines) sink(l);
    return rest;
  };
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (s: string) => {
    out += s;
    partialOut = split(partialOut, s, (l) => {
      if (!l.startsWith("{")) return;
      try {
        parsedOut.push(JSON.parse(l));
      } catch {
        // not JSON
      }
    });
    notify();
  });
  child.stderr!.on("data", (s: string) => {
    err += s;
    partialErr = split(partialErr, s, (l) => {
      if (!l.startsWith("{")) return;
      try {
        parsedErr.push(JSON.parse(l) as LogLine);
      } catch {
        // not JSON
      }
    });
    notify();
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once("close", (code) => {
      exitCode = code;
      children.delete(child);
      for (const d of [ownState, ownCwd]) if (d !== undefined) rmSync(d, { recursive: true, force: true, maxRetries: 3 });
      notify();
      resolve(code);
    });
  });
  const describe = (): string => `\n--- stdout ---\n${out.slice(-6000)}\n--- stderr ---\n${err.slice(-6000)}`;
  function waitFor<T>(check: () => T | undefined | false, what: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(tick);
      };
      const tick = (): void => {
        let v: T | undefined | false;
        try {
          v = check();
        } catch (e) {
          done();
          reject(e as Error);
          return;
        }
        if (v !== undefined && v !== false) {
          done();
          resolve(v);
        } else if (exitCode !== undefined) {
          done();
          reject(new Error(`kubecano exited (code ${exitCode}) before ${what}${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(tick);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe()}`));
      }, timeoutMs);
      waiters.add(tick);
      tick();
    });
  }
  // Checks that depend on the outside world (a fake's state) need polling as well.
  const poll = setInterval(notify, 100);
  poll.unref();
  void exited.then(() => clearInterval(poll));
  return {
    proc: child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    logs: () => [...parsedErr],
    lines: <T>() => parsedOut as T[],
    waitFor,
    waitForLog: (m, what, ms) => waitFor(() => parsedErr.find(m), what, ms),
    exited: () => exited,
    async stop(signal: NodeJS.Signals = "SIGTERM", ms = DEFAULT_TIMEOUT_MS) {
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      const killer = setTimeout(() => child.kill("SIGKILL"), ms);
      try {
        return await exited;
      } finally {
        clearTimeout(killer);
      }
    },
  };
}

export async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once("close", () => resolve());
          c.kill("SIGKILL");
        }),
    ),
  );
}
