import { writeSync } from "node:fs";
import type { Issue } from "../../core/issue.js";
import { DeliveryError, type Destination, type DestinationDeps, type SendResult } from "../types.js";
import type { ConsoleParams } from "./params.js";
import { renderConsole } from "./render.js";

/** Issues the console destination takes at once (see `concurrency` below). */
export const CONSOLE_CONCURRENCY = 64;

/** Writes each Issue to stdout (or stderr): the embedded default destination. */
export function create(name: string, params: ConsoleParams, deps: DestinationDeps): Destination {
  const stream = (params.output === "stderr" ? deps.stderr ?? process.stderr : deps.stdout ?? process.stdout) as NodeJS.WritableStream & { isTTY?: boolean };
  const color =
    params.color === "always" ? true : params.color === "never" ? false : stream.isTTY === true && process.env["NO_COLOR"] === undefined;
  /**
   * Issues sent in one turn of the event loop are written together: one
   * write (a system call when the output is a file or /dev/null) instead of
   * one per Issue, which under an alert storm was a measurable part of each
   * webhook's cost. Each send resolves once its text is written.
   */
  let queued: { text: string; resolve: (r: SendResult) => void; reject: (e: Error) => void }[] = [];
  const printed: SendResult = { detail: `printed to ${params.output}` };
  // Output to a file (or /dev/null) is written synchronously by Node anyway
  // (its SyncWriteStream): write it directly, without the stream's Buffer
  // copy and callbacks, which were a measurable part of each Issue's cost.
  const fd = syncFileFd(stream);
  const flush = (): void => {
    const batch = queued;
    queued = [];
    let text = "";
    for (const q of batch) text += q.text;
    const done = (err: Error | null | undefined): void => {
      if (err) {
        const e = new DeliveryError(`cannot write to ${params.output}: ${err.message}`, { retryable: false, code: "write_failed" });
        for (const q of batch) q.reject(e);
      } else for (const q of batch) q.resolve(printed);
    };
    if (fd === undefined) {
      stream.write(text, done);
      return;
    }
    try {
      writeSync(fd, text);
      done(undefined);
    } catch (e) {
      done(e as Error);
    }
  };
  const render = (issue: Issue): string => (params.format === "json" ? `${JSON.stringify(issue)}\n` : `${renderConsole(issue, { color })}\n`);
  return {
    name,
    type: "console",
    // Its sends are written once per turn of the event loop (flush): with
    // delivery.concurrency's 4, a busy event loop (a few hundred turns a
    // second under a webhook storm) printed fewer Issues than it accepted,
    // and the backlog grew in memory. 64 keeps a turn's writing short.
    concurrency: CONSOLE_CONCURRENCY,
    render: (issue) => ({ kind: "text", body: render(issue) }),
    send(issue: Issue): Promise<SendResult> {
      const text = render(issue);
      return new Promise((resolve, reject) => {
        if (queued.length === 0) setImmediate(flush);
        queued.push({ text, resolve, reject });
      });
    },
  };
}

/** The file descriptor behind Node's SyncWriteStream (what stdout and stderr are when they are files), else undefined. */
function syncFileFd(stream: NodeJS.WritableStream): number | undefined {
  const s = stream as NodeJS.WritableStream & { fd?: unknown };
  return s.constructor.name === "SyncWriteStream" && typeof s.fd === "number" ? s.fd : undefined;
}
