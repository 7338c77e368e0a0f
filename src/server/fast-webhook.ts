import http from "node:http";
import type net from "node:net";

/** What the webhook route answers: the same for both paths (see createServer). */
export interface WebhookAnswer {
  readonly code: number;
  readonly body: unknown;
  /** Headers before the standard ones (Retry-After). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** A webhook request as the fast path saw it: for the handler and `listen --record`. */
export interface FastRequest {
  readonly body: Buffer;
  readonly remote: string | undefined;
  /** The request's headers as node:http would give them (lower-case names), made when first read. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface FastWebhookDeps {
  /** Takes every connection or request the fast path does not, and holds the settings both follow (timeouts). */
  readonly http: http.Server;
  /** The exact request target taken ("/api/alerts"). */
  readonly path: string;
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  /** Whether the Authorization value (undefined: none sent) lets the request through. */
  readonly authorized: (authorization: string | undefined) => boolean;
  /** Whether a Content-Type value is one the route takes. */
  readonly acceptsContentType: (value: string) => boolean;
  /** Checked per request: false hands it to node:http (tracing, which node:http's path records). */
  readonly enabled: () => boolean;
  /** Handles a complete request; a rejection is answered 500 by the caller's `failed`. */
  readonly handle: (request: FastRequest) => Promise<WebhookAnswer>;
  /** The answer to a request whose handler threw (a bug). */
  readonly failed: (e: unknown) => WebhookAnswer;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** The bytes a head the fast path takes may hold (header values: visible ASCII, spaces and tabs; no obs-text, no other control characters). */
const HEAD_CHARS = /^[\t\r\n\x20-\x7e]*$/;
/** The lengths of the header names parse() reads. */
const NAME_LENGTHS = new Set(["host", "content-type", "authorization", "content-length", "connection", "expect", "upgrade", "proxy-connection", "transfer-encoding"].map((n) => n.length));

/**
 * The webhook's fast path: plain HTTP/1.1 connections are accepted here,
 * and a request that is exactly `POST /api/alerts` with a JSON body of
 * known length, well-formed headers and valid credentials is answered
 * without node:http's request and response objects and streams. Those cost
 * the event loop about half of what a bare node:http server spends per
 * request (measured 92 against 50 µs), and under an alert storm the event
 * loop is what limits how many webhooks kubecano takes.
 *
 * Everything else goes to node:http, unchanged: at the first request the
 * fast path does not take, the connection (with every byte read so far) is
 * handed over for good, and node:http parses it from that request on and
 * answers as before: other routes and methods, partial or oversized
 * headers, Expect, Transfer-Encoding, Connection other than keep-alive,
 * missing or wrong credentials (401), other content types (415), bodies
 * over the limit (413), malformed or hostile requests (400, 431, 408).
 * The fast path takes a strict subset of what node:http accepts, read the
 * same way, so a request never means something else on either path.
 *
 * Answers are the bytes node:http writes for the same route (status line,
 * Content-Type, Content-Length, Cache-Control, Date, Connection,
 * Keep-Alive). Requests on one connection are answered in order.
 * Connections idle past the keep-alive timeout are closed, and a body that
 * does not arrive within the request timeout hands the connection to
 * node:http, whose own timeouts then apply.
 */
export class FastWebhook {
  private readonly conns = new Set<Conn>();
  private closing = false;
  private readonly requestLine: string;

  constructor(readonly deps: FastWebhookDeps) {
    this.requestLine = `POST ${deps.path} HTTP/1.1\r\n`;
  }

  /** A net.Server's connection listener. */
  readonly accept = (socket: net.Socket): void => {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const c = new Conn(this, socket);
    this.conns.add(c);
  };

  /** No new requests: idle connections close now, those with a request in hand once it is answered. */
  close(): void {
    this.closing = true;
    for (const c of [...this.conns]) c.closeIfIdle();
  }

  /** Cuts every connection still here (the end of a shutdown's grace period). */
  destroyAll(): void {
    for (const c of [...this.conns]) c.socket.destroy();
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** @internal */
  forget(c: Conn): void {
    this.conns.delete(c);
  }

  /**
   * The request at the start of `buf`, if the fast path takes it: where its
   * body starts, its length and headers. `undefined`: node:http's (also
   * when its headers are not all there yet).
   */
  parse(buf: Buffer): ParsedHead | undefined {
    const deps = this.deps;
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0 || end > deps.maxHeaderBytes) return undefined;
    const head = buf.toString("latin1", 0, end);
    // One pass for the whole head: visible ASCII, spaces, tabs and line ends only (no obs-text, no other control characters).
    if (!head.startsWith(this.requestLine) || !HEAD_CHARS.test(head)) return undefined;
    let contentLength: number | undefined;
    let contentType: string | undefined;
    let authorization: string | undefined;
    let host = false;
    let count = 0;
    let at = this.requestLine.length;
    while (at <= head.length) {
      let eol = head.indexOf("\r\n", at);
      if (eol < 0) eol = head.length;
      const colon = head.indexOf(":", at);
      // A line without a name (obs-fold, a bare CR or LF inside) or a name that is not a token: node:http's to refuse.
      if (colon <= at || colon > eol || !TOKEN.test(head.slice(at, colon))) return undefined;
      const value = trimOws(head.slice(colon + 1, eol));
      if (value.includes("\r") || value.includes("\n")) return undefined;
      // Only a name as long as one the fast path looks at is read (most headers are none of them).
      const name = NAME_LENGTHS.has(colon - at) ? head.slice(at, colon).toLowerCase() : "";
      switch (name) {
        case "host":
          if (host) return undefined;
          host = true;
          break;
        case "content-type":
          if (contentType !== undefined) return undefined;
          contentType = value;
          break;
        case "authorization":
          if (authorization !== undefined) return undefined;
          authorization = value;
          break;
        case "content-length":
          if (contentLength !== undefined || !/^\d{1,15}$/.test(value)) return undefined;
          contentLength = Number(value);
          if (contentLength > deps.maxBodyBytes) return undefined;
          break;
        case "connection":
          if (value.toLowerCase() !== "keep-alive") return undefined;
          break;
        case "expect":
        case "upgrade":
        case "proxy-connection":
        case "transfer-encoding":
          return undefined;
      }
      if (++count > 100) return undefined;
      at = eol + 2;
    }
    if (contentLength === undefined || contentType === undefined || !host) return undefined;
    if (!deps.acceptsContentType(contentType) || !deps.authorized(authorization)) return undefined;
    return { bodyStart: end + 4, contentLength, head };
  }
}

interface ParsedHead {
  readonly bodyStart: number;
  readonly contentLength: number;
  /** The head as read (latin1), for the headers when they are asked for. */
  readonly head: string;
}

/** Leading and trailing spaces and tabs (HTTP's optional whitespace), nothing else. */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** Headers as node:http's req.headers gives them: lower-case names, repeats joined with ", ". The head was checked by parse(). */
function headersOf(head: string): Record<string, string> {
  const out: Record<string, string> = {};
  // The header lines follow the request line.
  for (const line of head.slice(head.indexOf("\r\n") + 2).split("\r\n")) {
    const colon = line.indexOf(":");
    const k = line.slice(0, colon).toLowerCase();
    const v = trimOws(line.slice(colon + 1));
    out[k] = out[k] === undefined ? v : `${out[k]}, ${v}`;
  }
  return out;
}

/**
 * A request the fast path read; its headers are made when first read.
 * A class, not an object literal with a getter: V8 gives each such literal
 * its own accessor pair, allocated in the old generation, and that pair
 * kept the request's closure, head and body (and what they lead to) alive
 * through every young-generation GC until the next full one. Under load
 * that was about 1 MB promoted per scavenge, and scavenges of 5-9 ms
 * instead of 1-2.
 */
class ReadRequest implements FastRequest {
  private parsedHeaders: Record<string, string> | undefined;

  constructor(
    readonly body: Buffer,
    readonly remote: string | undefined,
    private readonly head: string,
  ) {}

  get headers(): Readonly<Record<string, string>> {
    return (this.parsedHeaders ??= headersOf(this.head));
  }
}

let dateText: string | undefined;
/** The Date header's value, made at most once a second (as node:http does). */
function utcDate(): string {
  if (dateText === undefined) {
    const now = new Date();
    dateText = now.toUTCString();
    setTimeout(() => (dateText = undefined), 1000 - now.getMilliseconds()).unref();
  }
  return dateText;
}

/** One connection while it is the fast path's. */
class Conn {
  /**
   * Bytes read and not yet used, always from a request's first byte. Kept
   * as the chunks read and joined only when parsed or complete: a large
   * body in many reads is copied once, not once per read.
   */
  private chunks: Buffer[] = [];
  private size = 0;
  /** The parsed head of the request whose body is still arriving. */
  private pending: ParsedHead | undefined;
  /** A request is being handled: what arrives meanwhile waits (answers go in order). */
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private gone = false;

  constructor(
    private readonly fast: FastWebhook,
    readonly socket: net.Socket,
  ) {
    socket.on("data", this.onData);
    socket.on("error", this.onError);
    socket.on("close", this.onClose);
    // A connection that sends nothing is node:http's to keep or cut, as before.
    this.arm(fast.deps.http.headersTimeout || fast.deps.http.keepAliveTimeout, () => this.handOff());
  }

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (!this.busy) this.next();
    // A client that keeps sending while its request is handled waits (TCP backpressure), as node:http makes it.
    else if (this.size > this.fast.deps.maxBodyBytes + this.fast.deps.maxHeaderBytes) this.socket.pause();
  };

  private readonly onError = (): void => {
    // A reset or broken pipe: the peer is gone; node:http ignores these the same way.
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.gone = true;
    this.disarm();
    this.fast.forget(this);
  };

  closeIfIdle(): void {
    if (!this.busy && this.pending === undefined && this.size === 0) this.socket.destroy();
  }

  /** The unused bytes as one buffer. */
  private joined(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0]!;
  }

  /** Takes the next request in the buffer, waits for more of it, or hands the connection over. */
  private next(): void {
    if (this.size === 0) {
      if (this.fast.isClosing) this.socket.destroy();
      else this.arm(this.fast.deps.http.keepAliveTimeout, () => this.socket.destroy());
      return;
    }
    if (this.pending === undefined) {
      const head = this.fast.deps.enabled() ? this.fast.parse(this.joined()) : undefined;
      if (head === undefined) return this.handOff();
      this.pending = head;
      // The body may come in several reads; past the request timeout, node:http takes over (and applies its own).
      this.arm(this.fast.deps.http.requestTimeout, () => this.handOff());
    }
    const head = this.pending;
    const end = head.bodyStart + head.contentLength;
    if (this.size < end) return;
    const buf = this.joined();
    this.disarm();
    this.pending = undefined;
    this.chunks = buf.length > end ? [buf.subarray(end)] : [];
    this.size = buf.length - end;
    this.busy = true;
    const request = new ReadRequest(buf.subarray(head.bodyStart, end), this.socket.remoteAddress, head.head);
    let answered: Promise<WebhookAnswer>;
    try {
      answered = this.fast.deps.handle(request);
    } catch (e) {
      answered = Promise.reject(e as Error);
    }
    answered.then(
      (a) => this.answer(a),
      (e: unknown) => this.answer(this.fast.deps.failed(e)),
    );
  }

  private answer(a: WebhookAnswer): void {
    this.busy = false;
    if (this.gone) return;
    if (this.socket.isPaused()) this.socket.resume();
    const close = this.fast.isClosing;
    const text = `${JSON.stringify(a.body)}\n`;
    let head = `HTTP/1.1 ${a.code} ${http.STATUS_CODES[a.code] ?? "Unknown"}\r\n`;
    if (a.headers !== undefined) for (const [k, v] of Object.entries(a.headers)) head += `${k}: ${v}\r\n`;
    head += `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nCache-Control: no-store\r\nDate: ${utcDate()}\r\n`;
    const keepAlive = this.fast.deps.http.keepAliveTimeout;
    head += close ? "Connection: close\r\n\r\n" : keepAlive > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAlive / 1000)}\r\n\r\n` : "Connection: keep-alive\r\n\r\n";
    if (close) {
      this.socket.end(head + text);
      return;
    }
    this.socket.write(head + text);
    this.next();
  }

  /**
   * Gives the connection to node:http with every byte not yet used, at a
   * request's first byte: it parses from there as if it had read them.
   */
  private handOff(): void {
    if (this.busy || this.gone) return;
    this.disarm();
    const s = this.socket;
    s.pause();
    s.off("data", this.onData);
    s.off("error", this.onError);
    s.off("close", this.onClose);
    this.fast.forget(this);
    if (this.size > 0) s.unshift(this.joined());
    this.chunks = [];
    this.size = 0;
    this.pending = undefined;
    this.fast.deps.http.emit("connection", s);
    s.resume();
  }

  private arm(ms: number, fire: () => void): void {
    this.disarm();
    if (ms <= 0) return;
    this.timer = setTimeout(fire, ms);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
