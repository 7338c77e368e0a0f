import { stringify } from "yaml";
import type { GlobalOptions, Io } from "../cli.js";
import { loadConfig } from "../config/load.js";
import { redactConfig } from "../config/redact.js";
import { configJsonSchema } from "../config/schema.js";
import { formatMs } from "../config/duration.js";
import { ConfigError, ExitCode } from "../errors.js";
import { chalkFor, describeConfigSource } from "./common.js";

/** `config validate`: 0 when the config loads, 1 (not 2) when it does not: the check itself worked. */
export async function configValidate(opts: GlobalOptions, io: Io): Promise<number> {
  const c = chalkFor(io.stdout, opts, io.env);
  try {
    const loaded = await loadConfig({ configPath: opts.config, env: io.env });
    const dests = loaded.config.destinations.map((d) => `${d.name} (${d.type})`).join(", ");
    io.stdout.write(`${c.green("✔")} config is valid: ${describeConfigSource(loaded)}\n  destinations: ${dests}\n`);
    return ExitCode.OK;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.stderr.write(`${c.red("✖")} ${e.message}\n`);
    for (const p of e.problems) io.stderr.write(`  - ${p}\n`);
    if (e.hint !== undefined) io.stderr.write(`  hint: ${e.hint}\n`);
    return ExitCode.FAILURE;
  }
}

/** `config print`: the config as kubecano sees it, secrets redacted, durations readable. */
export async function configPrint(opts: GlobalOptions & { json: boolean }, io: Io): Promise<number> {
  const loaded = await loadConfig({ configPath: opts.config, env: io.env });
  const printable = humanDurations(redactConfig(loaded.config));
  if (opts.json) io.stdout.write(`${JSON.stringify(printable, null, 2)}\n`);
  else io.stdout.write(`# resolved from ${describeConfigSource(loaded)}\n${stringify(printable, { lineWidth: 0 })}`);
  return ExitCode.OK;
}

export async function configSchemaCommand(io: Io): Promise<number> {
  io.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return ExitCode.OK;
}

/** Durations are held in ms; print them the way they are written ("30s"). */
const DURATION_KEYS = new Set(["attemptTimeout", "shutdownGrace", "dedupWindow", "retention", "initialDelay", "maxDelay", "maxAge", "timeout"]);

function humanDurations<T>(value: T, key = ""): T {
  if (typeof value === "number" && DURATION_KEYS.has(key)) return formatMs(value) as T;
  if (Array.isArray(value)) return value.map((v) => humanDurations(v)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, humanDurations(v, k)])) as T;
  }
  return value;
}
