import { pino, type Logger as PinoLogger, type LevelWithSilent } from "pino";

export type Logger = PinoLogger;
export type LogFormat = "json" | "pretty";
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Default: pretty when the stream is a terminal, JSON otherwise (what log collectors parse). */
  readonly format?: LogFormat | undefined;
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Applied to every serialised line: removes secrets that slipped into messages. */
  readonly scrub?: (line: string) => string;
  readonly color?: boolean;
}

/**
 * Logs go to stderr so stdout stays for what the command prints (console
 * destination, --json output). Only this module knows pino.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const format = opts.format ?? (stream.isTTY === true ? "pretty" : "json");
  const scrub = opts.scrub ?? ((s: string) => s);
  const color = opts.color ?? (stream.isTTY === true && process.env["NO_COLOR"] === undefined);
  const dest =
    format === "pretty"
      ? { write: (line: string) => void stream.write(prettyLine(line, color)) }
      : { write: (line: string) => void stream.write(line) };
  return pino(
    {
      level: (opts.level ?? "info") as LevelWithSilent,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: { streamWrite: scrub },
    },
    dest,
  );
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

const LEVEL_COLORS: Record<string, string> = { trace: "90", debug: "36", info: "32", warn: "33", error: "31", fatal: "35" };

/** Turns one pino JSON line into "10:38:06 INFO  message key=value". */
export function prettyLine(line: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, err, ...rest } = rec;
  const t = typeof time === "string" ? time.slice(11, 19) : "";
  const lvl = String(level ?? "info");
  const lvlText = lvl.toUpperCase().padEnd(5);
  const paint = (code: string, s: string): string => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const fields = Object.entries(rest)
    .map(([k, v]) => `${paint("2", `${k}=`)}${typeof v === "string" ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`)
    .join(" ");
  let out = `${paint("2", t)} ${paint(LEVEL_COLORS[lvl] ?? "0", lvlText)} ${String(msg ?? "")}${fields !== "" ? ` ${fields}` : ""}\n`;
  if (err !== undefined && typeof err === "object" && err !== null) {
    const e = err as { message?: unknown; stack?: unknown };
    if (lvl === "fatal" || lvl === "error") out += `${paint("2", `      ${String(e.stack ?? e.message)}`)}\n`;
  }
  return out;
}
