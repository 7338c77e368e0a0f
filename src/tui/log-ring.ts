import { EventEmitter } from "node:events";
import { Writable } from "node:stream";

/**
 * Where the logs of `listen --tui` go while the UI owns the terminal: the
 * last lines, for the log pane. `release(stream)` ends the capture: the
 * lines kept are written to `stream` (so warnings seen in the pane are not
 * lost when the UI closes) and everything after goes straight to it.
 */
export class LogRing extends EventEmitter<{ change: [] }> {
  private readonly lines: string[] = [];
  private partial = "";
  private target: NodeJS.WritableStream | undefined;
  /** Writable for the logger; not a terminal, so the logger writes plain text. */
  readonly stream: Writable & { isTTY?: boolean };

  constructor(private readonly max = 500) {
    super();
    this.stream = new Writable({
      write: (chunk: Buffer | string, _enc, cb) => {
        this.write(typeof chunk === "string" ? chunk : chunk.toString("utf8"));
        cb();
      },
    });
  }

  write(text: string): void {
    if (this.target !== undefined) {
      this.target.write(text);
      return;
    }
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    if (parts.length === 0) return;
    for (const p of parts) this.lines.push(p);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
    this.emit("change");
  }

  /** The last `n` complete lines. */
  tail(n: number): readonly string[] {
    return n <= 0 ? [] : this.lines.slice(-n);
  }

  get size(): number {
    return this.lines.length;
  }

  release(to: NodeJS.WritableStream, replayLast = 20): void {
    if (this.target !== undefined) return;
    const last = this.lines.slice(-replayLast);
    if (last.length > 0) to.write(`${last.join("\n")}\n`);
    if (this.partial !== "") to.write(this.partial);
    this.partial = "";
    this.target = to;
  }
}
