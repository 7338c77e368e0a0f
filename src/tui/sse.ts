/**
 * A Server-Sent Events parser (the WHATWG "event stream interpretation"):
 * feed it text as it arrives, in any chunking, and it calls back once per
 * complete event. Lines end in LF, CRLF or CR; `:` lines are comments;
 * several `data:` lines join with LF; an event without data is not
 * dispatched; `id:` persists to later events. Pure: no I/O.
 */

export interface SseMessage {
  /** "message" when the event names no type. */
  readonly event: string;
  readonly data: string;
  /** The last event id seen so far (events without `id:` keep the previous one). */
  readonly lastEventId: string;
  /** Whether this event carried an `id:` line itself. */
  readonly hasId: boolean;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private hasId = false;
  private sawCr = false;
  lastEventId = "";
  /** Milliseconds from a `retry:` line, if any. */
  retry: number | undefined;

  constructor(private readonly onMessage: (m: SseMessage) => void) {}

  push(chunk: string): void {
    let text = chunk;
    // A CRLF split across chunks: the LF belongs to the CR already handled.
    if (this.sawCr && text.startsWith("\n")) text = text.slice(1);
    this.sawCr = false;
    this.buffer += text;
    let start = 0;
    const buf = this.buffer;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(buf.slice(start, i));
      if (c === 13) {
        if (i + 1 < buf.length) {
          if (buf.charCodeAt(i + 1) === 10) i++;
        } else {
          this.sawCr = true;
        }
      }
      start = i + 1;
    }
    this.buffer = buf.slice(start);
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.event = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\u0000")) {
          this.lastEventId = value;
          this.hasId = true;
        }
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    const data = this.data;
    const event = this.event;
    const hasId = this.hasId;
    this.data = [];
    this.event = "";
    this.hasId = false;
    if (data.length === 0) return;
    this.onMessage({ event: event === "" ? "message" : event, data: data.join("\n"), lastEventId: this.lastEventId, hasId });
  }
}
