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
function humanDurations<T>(config: T): T {
  const d = (config as { delivery?: Record<string, unknown> }).delivery;
  if (d === undefined) return config;
  const retry = d["retry"] as Record<string, number>;
  return {
    ...config,
    delivery: {
      ...d,
      attemptTimeout: formatMs(d["attemptTimeout"] as number),
      shutdownGrace: formatMs(d["shutdownGrace"] as number),
      retry: { initialDelay: formatMs(retry["initialDelay"]!), maxDelay: formatMs(retry["maxDelay"]!), maxAge: formatMs(retry["maxAge"]!) },
    },
  } as T;
}
