import { Chalk, type ChalkInstance } from "chalk";
import type { GlobalOptions, Io } from "../cli.js";
import { loadConfig, type LoadedConfig } from "../config/load.js";
import { makeScrubber } from "../config/redact.js";
import { createLogger, type Logger } from "../observability/logger.js";
import type { DeliveryEngine } from "../delivery/engine.js";
import type { InProcessTui } from "../tui/in-process.js";

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

/**
 * Runs a long-lived command (listen, watch) with `--tui`: the terminal UI in
 * the same process, the command's logs (pretty, uncoloured) in its pane and
 * its other output kept away from the screen; the terminal is given back
 * however the command ends. Without `--tui` the command runs as it is.
 */
export async function withInProcessTui<O extends GlobalOptions & { readonly tui?: boolean }>(
  opts: O,
  io: Io,
  run: (opts: O, io: Io, ui: InProcessTui | undefined) => Promise<number>,
): Promise<number> {
  if (opts.tui !== true) return run(opts, io, undefined);
  const { inProcessTui } = await import("../tui/in-process.js");
  const ui = inProcessTui(io, opts.color && io.env["NO_COLOR"] === undefined);
  try {
    return await run({ ...opts, logFormat: opts.logFormat ?? "pretty", color: false }, ui.io, ui);
  } finally {
    ui.release();
  }
}

/** The first SIGINT or SIGTERM; the handlers are removed once it came, so a second signal is the caller's to handle. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(s);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/**
 * Watches for a second SIGINT or SIGTERM from now on: shutdown calls it as
 * soon as the first one came, so one that follows quickly (during the
 * server's close) is not left to the default handler, which kills the process.
 */
export function secondSignal(): { readonly came: Promise<void>; dispose(): void } {
  let on: (() => void) | undefined;
  const came = new Promise<void>((resolve) => {
    on = resolve;
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  return {
    came,
    dispose: () => {
      process.off("SIGINT", on!);
      process.off("SIGTERM", on!);
    },
  };
}

/**
 * Shutdown's drain: delivers for up to `graceMs`, or until the second
 * signal, which skips the rest of the grace period. Resolves with the
 * deliveries left (they stay in the store for the next start).
 */
export async function drainUntilSecondSignal(engine: DeliveryEngine, graceMs: number, second: ReturnType<typeof secondSignal>): Promise<{ left: number }> {
  try {
    return await Promise.race([
      engine.drain(graceMs),
      second.came.then(async () => {
        engine.stop();
        await engine.drain(0);
        return { left: engine.backlog() };
      }),
    ]);
  } finally {
    second.dispose();
  }
}
