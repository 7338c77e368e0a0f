import { existsSync } from "node:fs";
import path from "node:path";
import type { GlobalOptions, Io } from "../cli.js";
import { loadConfig } from "../config/load.js";
import { resolveStateDir } from "../config/state-dir.js";
import { formatDuration } from "../core/issue.js";
import { fit } from "../core/text.js";
import { DB_FILE, SqliteDeliveryStore } from "../delivery/sqlite-store.js";
import type { DeliveryInfo, DeliveryState } from "../delivery/store.js";
import { ExitCode, InputError, OperationError, errorMessage } from "../errors.js";
import { chalkFor } from "./common.js";

interface StateDirOptions extends GlobalOptions {
  readonly stateDir?: string;
}

/**
 * The state directory, without making a config with unset ${VARS} a
 * blocker: the config is only read when neither --state-dir nor
 * KUBECANO_STATE_DIR says where to look.
 */
async function stateDirFor(opts: StateDirOptions, io: Io): Promise<string> {
  if (opts.stateDir !== undefined || (io.env["KUBECANO_STATE_DIR"] ?? "") !== "") return resolveStateDir(opts.stateDir, undefined, io.env);
  const loaded = await loadConfig({ configPath: opts.config, env: io.env });
  return resolveStateDir(undefined, loaded.config.stateDir, io.env);
}

/** Opens an existing queue without taking it over from a running listen; undefined when there is none. */
function openExisting(dir: string): SqliteDeliveryStore | undefined {
  if (!existsSync(path.join(dir, DB_FILE))) return undefined;
  try {
    return SqliteDeliveryStore.open({ stateDir: dir, maxBacklog: Number.MAX_SAFE_INTEGER, owner: false });
  } catch (e) {
    throw new OperationError(`cannot open the queue in ${dir}: ${errorMessage(e)}`, "check --state-dir and the directory's permissions");
  }
}

export async function deliveriesList(opts: StateDirOptions & { state: DeliveryState | "all"; limit: number; json: boolean }, io: Io): Promise<number> {
  const dir = await stateDirFor(opts, io);
  const store = openExisting(dir);
  const states: DeliveryState[] = opts.state === "all" ? ["pending", "dead"] : [opts.state];
  const rows = store?.list({ states, limit: opts.limit }) ?? [];
  store?.close();
  if (opts.json) {
    io.stdout.write(`${JSON.stringify({ stateDir: dir, deliveries: rows }, null, 2)}\n`);
    return ExitCode.OK;
  }
  const c = chalkFor(io.stdout, opts, io.env);
  if (store === undefined) {
    io.stdout.write(`no queue in ${dir} yet: nothing has been accepted with this state directory (is --state-dir right?)\n`);
    return ExitCode.OK;
  }
  if (rows.length === 0) {
    io.stdout.write(`nothing ${opts.state === "all" ? "pending or dead" : opts.state} in ${dir}\n`);
    return ExitCode.OK;
  }
  io.stdout.write(`${c.dim(`queue: ${dir}`)}\n`);
  io.stdout.write(c.bold(`${"#".padEnd(7)} ${"STATE".padEnd(8)} ${"DESTINATION".padEnd(16)} ${"TRIES".padEnd(5)} ${"AGE".padEnd(7)} ${"NEXT".padEnd(7)} ${"ISSUE".padEnd(34)} LAST ERROR`) + "\n");
  const now = Date.now();
  for (const r of rows) io.stdout.write(`${formatRow(r, now, c)}\n`);
  const counts = rows.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.state]: (acc[r.state] ?? 0) + 1 }), {});
  io.stdout.write(`${c.dim(Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", "))}${rows.length === opts.limit ? c.dim(` (first ${opts.limit}; --limit N for more)`) : ""}\n`);
  if ((counts["dead"] ?? 0) > 0) io.stdout.write(`${c.dim("retry with `kubecano deliveries retry <#>` or `--all-dead`; remove with `kubecano deliveries drop <#>`")}\n`);
  return ExitCode.OK;
}

function formatRow(r: DeliveryInfo, now: number, c: ReturnType<typeof chalkFor>): string {
  const state = r.state === "dead" ? c.red(fit(r.state, 8)) : r.state === "pending" ? c.yellow(fit(r.state, 8)) : c.green(fit(r.state, 8));
  const next = r.state === "pending" && r.nextAttemptAt !== undefined ? (r.nextAttemptAt <= now ? "now" : formatDuration(r.nextAttemptAt - now)) : "-";
  return [
    fit(String(r.seq), 7),
    state,
    fit(r.destination, 16),
    fit(String(r.attempts), 5),
    fit(formatDuration(now - r.createdAt), 7),
    fit(next, 7),
    fit(r.title ?? r.issueId, 34),
    (r.lastError ?? "").replace(/\s+/g, " "),
  ].join(" ");
}

export async function deliveriesRetry(opts: StateDirOptions & { id: string | undefined; allDead: boolean }, io: Io): Promise<number> {
  if (opts.id === undefined && !opts.allDead) throw new InputError("say which delivery to retry", "give its number from `kubecano deliveries`, or --all-dead");
  if (opts.id !== undefined && opts.allDead) throw new InputError("give either a delivery or --all-dead, not both");
  const dir = await stateDirFor(opts, io);
  const store = openExisting(dir);
  if (store === undefined) throw new OperationError(`no queue in ${dir}`, "check --state-dir");
  try {
    if (opts.allDead) {
      const n = store.requeueAllDead();
      io.stdout.write(n === 0 ? "no dead deliveries to retry\n" : `queued ${n} dead deliver${n === 1 ? "y" : "ies"} again; a running listen sends them within a second\n`);
      return ExitCode.OK;
    }
    if (!store.requeue(opts.id!)) throw new OperationError(`no pending or dead delivery ${opts.id}`, "list them with `kubecano deliveries`");
    io.stdout.write(`queued delivery ${opts.id} again; a running listen sends it within a second\n`);
    return ExitCode.OK;
  } finally {
    store.close();
  }
}

export async function deliveriesDrop(opts: StateDirOptions & { id: string }, io: Io): Promise<number> {
  const dir = await stateDirFor(opts, io);
  const store = openExisting(dir);
  if (store === undefined) throw new OperationError(`no queue in ${dir}`, "check --state-dir");
  try {
    if (!store.drop(opts.id)) throw new OperationError(`no pending or dead delivery ${opts.id}`, "list them with `kubecano deliveries`");
    io.stdout.write(`dropped delivery ${opts.id}\n`);
    return ExitCode.OK;
  } finally {
    store.close();
  }
}
