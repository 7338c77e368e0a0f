import { Chalk, type ChalkInstance } from "chalk";
import type { GlobalOptions, Io } from "../cli.js";
import { loadConfig, type LoadedConfig } from "../config/load.js";
import { makeScrubber } from "../config/redact.js";
import { createLogger, type Logger } from "../observability/logger.js";

export interface CommandContext {
  readonly loaded: LoadedConfig;
  readonly log: Logger;
  readonly scrub: (s: string) => string;
}

/** Loads the config and builds a logger that scrubs the config's secrets. */
export async function commandContext(opts: GlobalOptions, io: Io): Promise<CommandContext> {
  const loaded = await loadConfig({ configPath: opts.config, env: io.env });
  const scrub = makeScrubber(loaded.secrets);
  const log = createLogger({
    level: opts.logLevel,
    format: opts.logFormat,
    stream: io.stderr,
    scrub,
    color: opts.color && io.stderr.isTTY === true,
  });
  return { loaded, log, scrub };
}

/** chalk for a stream: colour only on a terminal, never with --no-color or NO_COLOR. */
export function chalkFor(stream: { isTTY?: boolean }, opts: Pick<GlobalOptions, "color">, env: NodeJS.ProcessEnv): ChalkInstance {
  const on = opts.color && stream.isTTY === true && env["NO_COLOR"] === undefined;
  return new Chalk({ level: on || env["FORCE_COLOR"] === "1" ? 2 : 0 });
}

export function describeConfigSource(loaded: LoadedConfig): string {
  return loaded.filepath ?? "embedded default (no config file found: printing Issues to the terminal)";
}
