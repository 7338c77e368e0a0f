import type http from "node:http";
import { errorMessage } from "../errors.js";
import { LogOnce } from "../observability/log-once.js";
import type { Logger } from "../observability/logger.js";
import type { FeedHub, HubEvent } from "./feed.js";
import { FEED_LIMIT_DEFAULT, FEED_LIMIT_MAX } from "./feed-protocol.js";

export interface FeedEndpointsOptions {
  readonly hub: FeedHub;
  readonly log: Logger;
  /** Streams open at once; more are answered 503. */
  readonly maxStreams?: number;
  /** Bytes a client may leave unread before it is dropped (it reconnects and resumes). */
  readonly maxBufferedBytes?: number;
  /** A comment line this often keeps proxies and the client's idle check from ending a quiet stream. */
  readonly heartbeatMs?: number;
}

/** An answer for the HTTP layer to send as JSON. */
export interface FeedReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * GET /api/issues and GET /api/issues/stream over node:http. Authentication
 * is the HTTP layer's (the webhook's credentials); this serves the hub.
 * Each stream is bounded: a client that does not read is dropped once
 * maxBufferedBytes wait for it, so a stuck laptop cannot grow the daemon's
 * memory; it reconnects with Last-Event-ID and loses nothing still kept.
 */
export class FeedEndpoints {
  private readonly streams = new Set<http.ServerResponse>();
  private readonly maxStreams: number;
  private readonly maxBuffered: number;
  private readonly heartbeatMs: number;
  private readonly logOnce = new LogOnce(Date.now, 60_000);
  private closed = false;

  constructor(private readonly opts: FeedEndpointsOptions) {
    this.maxStreams = opts.maxStreams ?? 32;
    this.maxBuffered = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
  }

  /** GET /api/issues?limit=N */
  list(query: URLSearchParams): FeedReply {
    const raw = query.get("limit");
    let limit = FEED_LIMIT_DEFAULT;
    if (raw !== null) {
      if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) {
        return { status: 400, body: { status: "error", error: `limit must be a whole number from 1 to ${FEED_LIMIT_MAX}, not ${JSON.stringify(raw.slice(0, 40))}` } };
      }
      limit = Math.min(Number(raw), FEED_LIMIT_MAX);
    }
    try {
      return { status: 200, body: this.opts.hub.snapshot(limit) };
    } catch (e) {
      this.logOnce.log(this.opts.log, "error", "feed:snapshot", {}, `cannot read recent Issues for the feed: ${errorMessage(e)}`);
      return { status: 503, body: { status: "error", error: `cannot read recent Issues: ${errorMessage(e)}` }, headers: { "Retry-After": "5" } };
    }
  }

  /**
   * GET /api/issues/stream. Returns a reply when it refuses the stream;
   * undefined once it owns the response.
   */
  stream(req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams): FeedReply | undefined {
    if (this.closed) return { status: 503, body: { status: "error", error: "kubecano is shutting down" } };
    if (this.streams.size >= this.maxStreams) {
      this.logOnce.log(this.opts.log, "warn", "feed:streams", { max: this.maxStreams }, `refused an issue feed stream: ${this.maxStreams} are open already`);
      return { status: 503, body: { status: "error", error: `too many issue feed streams open (at most ${this.maxStreams}); close another kubecano tui` }, headers: { "Retry-After": "5" } };
    }
    const header = req.headers["last-event-id"];
    // EventSource clients resend the header; others may pass it in the query.
    const lastEventId = (Array.isArray(header) ? header[0] : header) ?? query.get("lastEventId") ?? undefined;

    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      // The stream is the connection's last response: ending it (shutdown, slow client) closes the socket.
      Connection: "close",
      "X-Accel-Buffering": "no",
    });
    res.socket?.setNoDelay(true);
    res.socket?.setKeepAlive(true, 30_000);
    this.streams.add(res);
    let heartbeat: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;
    const cleanup = (): void => {
      if (heartbeat !== undefined) clearInterval(heartbeat);
      heartbeat = undefined;
      unsubscribe?.();
      unsubscribe = undefined;
      this.streams.delete(res);
    };
    res.once("close", cleanup);

    const write = (frame: string): void => {
      if (res.destroyed || res.writableEnded) return;
      res.write(frame);
      if (res.writableLength > this.maxBuffered) {
        this.logOnce.log(this.opts.log, "warn", "feed:slow", { buffered: res.writableLength, remote: req.socket.remoteAddress }, `dropped an issue feed client that does not keep up (${res.writableLength} bytes unread); it can reconnect and resume`);
        cleanup();
        res.destroy();
      }
    };
    write("retry: 1000\n\n");
    write(`event: counters\ndata: ${JSON.stringify(this.opts.hub.counters())}\n\n`);
    const r = this.opts.hub.subscribe(lastEventId, (e: HubEvent) => write(e.frame));
    // A backlog larger than what a client may leave unread would only get it dropped again: a snapshot is cheaper.
    const backlog = r.ok && r.backlog.length > 0 ? r.backlog.map((e) => e.frame).join("") : "";
    if (!r.ok || backlog.length > this.maxBuffered) {
      if (r.ok) r.unsubscribe();
      const reason = r.ok ? "too many events since then" : r.reason;
      write(`event: reset\ndata: ${JSON.stringify({ reason })}\n\n`);
      cleanup();
      res.end();
      return undefined;
    }
    unsubscribe = r.unsubscribe;
    // Written in one piece: a backlog of thousands of small frames is one syscall, not thousands.
    if (backlog !== "") write(backlog);
    if (!res.destroyed) {
      heartbeat = setInterval(() => write(": ping\n\n"), this.heartbeatMs);
      heartbeat.unref();
    }
    return undefined;
  }

  /** Streams open now. */
  open(): number {
    return this.streams.size;
  }

  /** Ends every stream (shutdown); new ones are refused. */
  close(): void {
    this.closed = true;
    for (const res of [...this.streams]) {
      res.end();
      this.streams.delete(res);
    }
  }
}
