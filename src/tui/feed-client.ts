import { EventEmitter } from "node:events";
import { errorMessage } from "../errors.js";
import type { FeedEvent, IssuesSnapshot } from "../server/feed-protocol.js";
import { SseParser } from "./sse.js";

/** Where a feed client stands; `failed` is final (it stopped trying). */
export type ConnectionState =
  | { readonly kind: "connecting" }
  | { readonly kind: "live"; readonly since: number }
  | { readonly kind: "reconnecting"; readonly attempt: number; readonly retryAt: number; readonly error: string }
  | { readonly kind: "failed"; readonly error: string; readonly hint?: string | undefined };

export interface FeedSourceEvents {
  /** Recent Issues, newest first: replaces what was known of them (first connect, and after a reset). */
  snapshot: [snapshot: IssuesSnapshot];
  event: [event: FeedEvent];
  state: [state: ConnectionState];
}

/** A live issue feed: the daemon's over HTTP, or the hub of this process (`listen --tui`). */
export interface FeedSource extends EventEmitter<FeedSourceEvents> {
  /** Where it comes from, for people: "http://127.0.0.1:8080", "this process". */
  readonly target: string;
  start(): void;
  stop(): void;
}

export interface HttpFeedOptions {
  /** The daemon's base URL (http://host:port, optionally a path prefix and user:password@ for basic auth). */
  readonly url: string;
  /** Bearer token (the daemon's server.auth.bearerToken). */
  readonly token?: string | undefined;
  /** How many recent Issues to load first (1–1000). */
  readonly limit?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** No byte (event or heartbeat) for this long: the connection is dead, reconnect. */
  readonly idleTimeoutMs?: number;
  /** Time limit of the snapshot request. */
  readonly requestTimeoutMs?: number;
  readonly now?: () => number;
}

/** A problem that retrying cannot fix (wrong credentials, not a kubecano). */
export class FeedFatalError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "FeedFatalError";
  }
}

/** Base URL → the two endpoints and the Authorization header. */
export function feedEndpoints(url: string, token?: string): { list: URL; stream: URL; authorization: string | undefined; shown: string } {
  let base: URL;
  try {
    base = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`);
  } catch {
    throw new FeedFatalError(`not a URL: ${JSON.stringify(url)}`, "pass --url http://HOST:PORT (where kubecano listen runs)");
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new FeedFatalError(`unsupported URL scheme ${base.protocol} in ${url}`, "use http:// or https://");
  let authorization = token !== undefined && token !== "" ? `Bearer ${token}` : undefined;
  if (base.username !== "" && authorization === undefined) {
    authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString("base64")}`;
  }
  base.username = "";
  base.password = "";
  base.search = "";
  base.hash = "";
  // Accept the endpoint itself as well as the base: http://h:8080/api/issues.
  const prefix = base.pathname.replace(/\/+$/, "").replace(/\/api\/issues(\/stream)?$/, "");
  const at = (p: string): URL => new URL(`${prefix}${p}`, base);
  return { list: at("/api/issues"), stream: at("/api/issues/stream"), authorization, shown: `${base.protocol}//${base.host}${prefix}` };
}

/**
 * The daemon's feed over HTTP: GET /api/issues, then GET /api/issues/stream
 * with Last-Event-ID, for as long as it runs. A dropped or silent
 * connection is retried after 1 s, doubling up to 15 s, and resumes after
 * the last event handled, so nothing is missed or seen twice; when the
 * daemon cannot resume (restarted, too long away) it says `reset` and the
 * client loads a fresh snapshot. Wrong credentials or a URL that serves no
 * feed stop it (state `failed`).
 */
export class HttpFeedClient extends EventEmitter<FeedSourceEvents> implements FeedSource {
  readonly target: string;
  private readonly endpoints: ReturnType<typeof feedEndpoints>;
  private lastEventId: string | undefined;
  private stopped = false;
  private started = false;
  private current: AbortController | undefined;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private readonly now: () => number;
  /** Events that could not be read (not JSON): counted, skipped. */
  badEvents = 0;

  constructor(private readonly opts: HttpFeedOptions) {
    super();
    this.endpoints = feedEndpoints(opts.url, opts.token);
    this.target = this.endpoints.shown;
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.current?.abort(new Error("stopped"));
    if (this.sleeping !== undefined) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
    }
  }

  /** One snapshot, no stream (`--once`). Throws FeedFatalError or a network error. */
  async fetchSnapshot(): Promise<IssuesSnapshot> {
    const url = new URL(this.endpoints.list);
    url.searchParams.set("limit", String(this.opts.limit ?? 100));
    const ctl = new AbortController();
    this.current = ctl;
    const timer = setTimeout(() => ctl.abort(new Error(`no answer within ${(this.opts.requestTimeoutMs ?? 30_000) / 1000} s`)), this.opts.requestTimeoutMs ?? 30_000);
    try {
      const res = await fetch(url, { headers: this.headers(), signal: ctl.signal });
      if (!res.ok) await this.refuse(res, url);
      const body = (await res.json()) as IssuesSnapshot;
      if (typeof body?.cursor !== "string" || !Array.isArray(body.issues)) throw new FeedFatalError(`${url.origin} answered /api/issues with something that is not kubecano's issue list`);
      return body;
    } catch (e) {
      throw ctl.signal.aborted && !(e instanceof FeedFatalError) ? new Error(errorMessage(ctl.signal.reason)) : e;
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    const initial = this.opts.initialBackoffMs ?? 1_000;
    const max = this.opts.maxBackoffMs ?? 15_000;
    let delay = initial;
    let attempt = 0;
    let needSnapshot = true;
    this.setState({ kind: "connecting" });
    while (!this.stopped) {
      let error: string;
      let wasLive = false;
      try {
        if (needSnapshot) {
          const snapshot = await this.fetchSnapshot();
          if (this.stopped) return;
          this.lastEventId = snapshot.cursor;
          needSnapshot = false;
          this.emit("snapshot", snapshot);
        }
        const r = await this.follow(() => {
          wasLive = true;
          attempt = 0;
          delay = initial;
        });
        if (r === "reset") {
          needSnapshot = true;
          continue;
        }
        error = "the daemon ended the stream";
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof FeedFatalError) {
          this.setState({ kind: "failed", error: e.message, hint: e.hint });
          this.stopped = true;
          return;
        }
        error = describeNetworkError(e);
      }
      if (this.stopped) return;
      if (wasLive) delay = initial;
      attempt++;
      this.setState({ kind: "reconnecting", attempt, retryAt: this.now() + delay, error });
      await this.sleep(delay);
      delay = Math.min(delay * 2, max);
    }
  }

  /** Follows the stream until it ends ("ended"), the daemon asks for a reset, or it fails (throws). */
  private async follow(onLive: () => void): Promise<"ended" | "reset"> {
    const ctl = new AbortController();
    this.current = ctl;
    const headers = this.headers();
    headers["Accept"] = "text/event-stream";
    if (this.lastEventId !== undefined) headers["Last-Event-ID"] = this.lastEventId;
    const idleMs = this.opts.idleTimeoutMs ?? 45_000;
    let idle: NodeJS.Timeout | undefined;
    const touch = (): void => {
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(() => ctl.abort(new Error(`no data for ${Math.round(idleMs / 1000)} s`)), idleMs);
    };
    // Set from the parser's callback: not narrowed by the compiler.
    let result = "ended" as "ended" | "reset";
    try {
      touch();
      const res = await fetch(this.endpoints.stream, { headers, signal: ctl.signal });
      if (!res.ok) await this.refuse(res, this.endpoints.stream);
      if (res.body === null) return "ended";
      this.setState({ kind: "live", since: this.now() });
      onLive();
      const decoder = new TextDecoder();
      const parser = new SseParser((m) => {
        if (result === "reset") return;
        if (m.event === "reset") {
          result = "reset";
          return;
        }
        let data: unknown;
        try {
          data = JSON.parse(m.data);
        } catch {
          this.badEvents++;
          return;
        }
        if (m.event === "issue" || m.event === "update" || m.event === "delivery") {
          this.lastEventId = m.lastEventId;
          this.emit("event", { type: m.event, id: m.lastEventId, data } as FeedEvent);
        } else if (m.event === "counters") {
          this.emit("event", { type: "counters", data } as FeedEvent);
        }
      });
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        touch();
        parser.push(decoder.decode(chunk, { stream: true }));
        if (result === "reset" || this.stopped) break;
      }
      return result;
    } catch (e) {
      if (result === "reset") return result;
      throw ctl.signal.aborted && !this.stopped && !(e instanceof FeedFatalError) ? new Error(errorMessage(ctl.signal.reason)) : e;
    } finally {
      if (idle !== undefined) clearTimeout(idle);
      ctl.abort(new Error("done"));
    }
  }

  private headers(): Record<string, string> {
    return this.endpoints.authorization !== undefined ? { Authorization: this.endpoints.authorization } : {};
  }

  /** Throws for a non-2xx answer: fatal when retrying cannot help. */
  private async refuse(res: Response, url: URL): Promise<never> {
    let detail = "";
    try {
      const body = (await res.json()) as { error?: unknown };
      if (typeof body.error === "string") detail = `: ${body.error}`;
    } catch {
      // not JSON: the status says enough
    }
    if (res.status === 401 || res.status === 403) {
      throw new FeedFatalError(`${url.origin} refused the credentials (${res.status})${detail}`, "pass the daemon's bearer token with --token or KUBECANO_TOKEN (basic auth: http://USER:PASSWORD@HOST:PORT)");
    }
    if (res.status === 404 || res.status === 405) {
      throw new FeedFatalError(`${url.origin} serves no issue feed at ${url.pathname} (${res.status})`, "point --url at kubecano listen (a version with `kubecano tui`)");
    }
    throw new Error(`${url.origin} answered ${res.status}${detail}`);
  }

  private setState(s: ConnectionState): void {
    this.emit("state", s);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, ms);
      this.sleeping = { timer, resolve };
    });
  }
}

/** "connection refused", "cannot resolve example.invalid", ... rather than "fetch failed". */
export function describeNetworkError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code === "ECONNREFUSED") return "connection refused (is kubecano listen running there?)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "cannot resolve the host";
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return "the connection was cut";
  if (code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return "connecting timed out";
  if (cause?.message !== undefined && errorMessage(e) === "fetch failed") return cause.message;
  if (errorMessage(e) === "terminated") return "the connection was cut";
  return errorMessage(e);
}
