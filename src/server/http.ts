import http from "node:http";
import https from "node:https";
import net, { type AddressInfo, type Socket } from "node:net";
import type { ServerConfig } from "../config/schema.js";
import { errorMessage } from "../errors.js";
import { LogOnce } from "../observability/log-once.js";
import type { Logger } from "../observability/logger.js";
import type { CountCell, Metrics } from "../observability/metrics.js";
import type { IngestOutcome } from "../pipeline.js";
import { tracer } from "../observability/tracing.js";
import { authChallenge, makeAuthCheck } from "./auth.js";
import type { FeedHub } from "./feed.js";
import { FeedEndpoints } from "./feed-http.js";
import { FastWebhook, type FastRequest, type WebhookAnswer } from "./fast-webhook.js";

export interface ReadyCheck {
  readonly ok: boolean;
  readonly detail?: string;
}

/** What the pipeline may know about the request besides its body (for `listen --record`). */
export interface RequestMeta {
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * A fast-path request's RequestMeta: its headers are made only if read
 * (listen --record). A class rather than an object literal with a getter,
 * for the reason given at ReadRequest (fast-webhook.ts).
 */
class FastRequestMeta implements RequestMeta {
  readonly path = "/api/alerts";
  constructor(private readonly request: FastRequest) {}
  get headers(): Readonly<Record<string, string>> {
    return this.request.headers;
  }
}

export interface ServerDeps {
  readonly config: ServerConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly version: string;
  /** Handles a complete, size-checked Alertmanager webhook body. */
  readonly ingestAlertmanager: (body: Buffer, request: RequestMeta) => Promise<IngestOutcome>;
  /** PEM certificate and key: serve HTTPS instead of HTTP. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  /** Readiness checks beyond "listening and not shutting down". */
  readonly readiness?: () => Record<string, ReadyCheck>;
  /** The live issue feed: serves GET /api/issues and /api/issues/stream, behind the webhook's credentials. */
  readonly feed?: FeedHub | undefined;
}

export interface KubecanoServer {
  readonly server: http.Server;
  listen(): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts connections. */
  close(graceMs?: number): Promise<void>;
  /** /readyz answers 503 from now on (shutdown has begun). */
  markNotReady(): void;
}

type Route = "alerts" | "health" | "ready" | "metrics" | "root" | "issues" | "stream" | "unknown";

const ROUTES: Record<string, { route: Route; methods: readonly string[] }> = {
  "/api/alerts": { route: "alerts", methods: ["POST"] },
  "/healthz": { route: "health", methods: ["GET", "HEAD"] },
  "/livez": { route: "health", methods: ["GET", "HEAD"] },
  "/readyz": { route: "ready", methods: ["GET", "HEAD"] },
  "/metrics": { route: "metrics", methods: ["GET", "HEAD"] },
  "/": { route: "root", methods: ["GET", "HEAD"] },
  "/api/issues": { route: "issues", methods: ["GET", "HEAD"] },
  "/api/issues/stream": { route: "stream", methods: ["GET"] },
};

/**
 * The webhook server on node:http. It speaks HTTP and nothing else: the
 * pipeline decides what a body means. Status codes follow Alertmanager's
 * retry rules: 2xx once the work is stored, 503 (retried) when kubecano
 * cannot take it now, 4xx (dropped) only when the request itself is wrong.
 */
export function createServer(deps: ServerDeps): KubecanoServer {
  const { config, log, metrics } = deps;
  const checkAuth = makeAuthCheck(config.auth);
  const logOnce = new LogOnce(Date.now, 60_000);
  const feed = deps.feed !== undefined ? new FeedEndpoints({ hub: deps.feed, log }) : undefined;
  let ready = true;

  const options: http.ServerOptions = {
    // Slow clients (slowloris) cannot hold a connection forever.
    headersTimeout: 10_000,
    requestTimeout: 60_000,
    keepAliveTimeout: 5_000,
    maxHeaderSize: 16 * 1024,
    // How often those timeouts are checked (Node's default, 30 s, lets a slow client linger 40 s).
    connectionsCheckingInterval: 1_000,
  };
  const INTERNAL_ERROR = { status: "error", error: "internal error; the request can be retried" };
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e }, `internal error handling ${req.method ?? "?"} ${pathOf(req)}: ${errorMessage(e)}`);
      if (!res.headersSent) send(res, "unknown", 500, INTERNAL_ERROR);
      else res.destroy();
    });
  };
  const server: http.Server = deps.tls !== undefined ? https.createServer({ ...options, cert: deps.tls.cert, key: deps.tls.key }, onRequest) : http.createServer(options, onRequest);
  server.maxConnections = config.maxConnections;
  // Plain HTTP: connections are accepted by the webhook's fast path, which hands node:http what it does not take.
  const fast =
    deps.tls === undefined
      ? new FastWebhook({
          http: server,
          path: "/api/alerts",
          maxBodyBytes: config.maxBodyBytes,
          maxHeaderBytes: options.maxHeaderSize ?? 16 * 1024,
          authorized: (authorization) => checkAuth === undefined || checkAuth(authorization),
          acceptsContentType: (value) => value === "application/json" || isJsonMediaType(mediaType(value)),
          // Traced requests take node:http's path, which records their span.
          enabled: () => tracer() === undefined,
          handle: async (r) => {
            const a = answerOf(await deps.ingestAlertmanager(r.body, new FastRequestMeta(r)), r.remote);
            count("alerts", a.code);
            return a;
          },
          failed: (e) => {
            log.error({ err: e }, `internal error handling POST /api/alerts: ${errorMessage(e)}`);
            count("unknown", 500);
            return { code: 500, body: INTERNAL_ERROR };
          },
        })
      : undefined;
  const listener: net.Server = fast !== undefined ? net.createServer({ noDelay: true }, fast.accept) : server;
  if (fast !== undefined) listener.maxConnections = config.maxConnections;
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "ERR_HTTP_HEADERS_TIMEOUT" ? 408 : err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
    count("unknown", code);
    logOnce.log(log, "info", `client_error:${code}`, { code: err.code }, `refused a malformed or slow request: ${err.code ?? err.message}`);
    if (socket.writable && !socket.destroyed) {
      const reason = http.STATUS_CODES[code] ?? "Bad Request";
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = pathOf(req);
    const entry = ROUTES[path];
    if (entry === undefined) {
      return send(res, "unknown", 404, { status: "error", error: `no such endpoint ${truncateForMessage(path)}: Alertmanager should POST to /api/alerts` });
    }
    const method = req.method ?? "GET";
    if (!entry.methods.includes(method)) {
      res.setHeader("Allow", entry.methods.join(", "));
      return send(res, entry.route, 405, { status: "error", error: `${method} is not allowed on ${path}: use ${entry.methods.join(" or ")}` });
    }
    switch (entry.route) {
      case "health":
        return send(res, "health", 200, { status: "ok" });
      case "ready": {
        const checks: Record<string, ReadyCheck> = { server: ready ? { ok: true } : { ok: false, detail: "shutting down" }, ...deps.readiness?.() };
        const ok = Object.values(checks).every((c) => c.ok);
        return send(res, "ready", ok ? 200 : 503, { status: ok ? "ready" : "not ready", checks });
      }
      case "metrics": {
        const { contentType, body } = await metrics.render();
        count("metrics", 200);
        res.writeHead(200, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) });
        res.end(method === "HEAD" ? undefined : body);
        return;
      }
      case "root":
        return send(res, "root", 200, { name: "kubecano", version: deps.version, endpoints: ["POST /api/alerts", "GET /healthz", "GET /livez", "GET /readyz", "GET /metrics", ...(feed !== undefined ? ["GET /api/issues", "GET /api/issues/stream"] : [])] });
      case "alerts": {
        const t = tracer();
        if (t === undefined) return alerts(req, res);
        // Continues a trace the sender started (traceparent), else starts one.
        return t.inSpan(
          "webhook POST /api/alerts",
          "server",
          { "http.request.method": "POST", "http.route": "/api/alerts" },
          (span) =>
            alerts(req, res).finally(() => {
              if (res.headersSent) span.setAttribute("http.response.status_code", res.statusCode);
            }),
          { headers: req.headers },
        );
      }
      case "issues":
      case "stream":
        return feedRoute(req, res, entry.route);
      case "unknown":
        return send(res, "unknown", 404, { status: "error", error: "not found" });
    }
  }

  async function alerts(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (checkAuth !== undefined && !checkAuth(req.headers.authorization)) {
      metrics.rejectedPayloads.inc({ reason: "auth" });
      res.setHeader("WWW-Authenticate", authChallenge(config.auth));
      reject(req, "auth", 401);
      return send(res, "alerts", 401, {
        status: "error",
        error: req.headers.authorization === undefined ? "authentication required: send the configured credentials in the Authorization header" : "invalid credentials",
      }, true);
    }
    const ctype = mediaType(req.headers["content-type"] ?? "");
    if (!isJsonMediaType(ctype)) {
      metrics.rejectedPayloads.inc({ reason: "content_type" });
      reject(req, "content_type", 415);
      return send(res, "alerts", 415, {
        status: "error",
        error: `unsupported content type ${ctype === "" ? "(none)" : JSON.stringify(truncateForMessage(ctype))}: send Content-Type: application/json`,
      }, true);
    }
    const body = await readBody(req, config.maxBodyBytes);
    if (body === "too_large") {
      metrics.rejectedPayloads.inc({ reason: "too_large" });
      reject(req, "too_large", 413);
      return send(res, "alerts", 413, { status: "error", error: `request body exceeds server.maxBodyBytes (${config.maxBodyBytes} bytes): lower max_alerts in Alertmanager's webhook_config or raise the limit` }, true);
    }
    if (body === "aborted") return;
    const a = answerOf(await deps.ingestAlertmanager(body, { path: pathOf(req), headers: req.headers }), req.socket.remoteAddress);
    if (a.headers !== undefined) for (const [k, v] of Object.entries(a.headers)) res.setHeader(k, v);
    return send(res, "alerts", a.code, a.body);
  }

  /** The webhook route's answer to an ingest outcome, with its logs and metrics (both paths: see FastWebhook). */
  function answerOf(outcome: IngestOutcome, remote: string | undefined): WebhookAnswer {
    switch (outcome.kind) {
      case "accepted":
        return { code: 202, body: { status: "accepted", alerts: outcome.alerts, issues: outcome.issues, deliveries: outcome.deliveries, duplicates: outcome.duplicates } };
      case "invalid":
        metrics.rejectedPayloads.inc({ reason: outcome.error.kind });
        rejected(remote, outcome.error.kind, 400, outcome.error.message);
        return { code: 400, body: { status: "error", error: outcome.error.message } };
      case "unavailable":
        metrics.rejectedPayloads.inc({ reason: outcome.reason });
        logOnce.log(log, "warn", `unavailable:${outcome.reason}`, { reason: outcome.reason }, `answering 503 to webhooks: ${outcome.message}`);
        return { code: 503, body: { status: "error", error: outcome.message }, headers: { "Retry-After": String(outcome.retryAfterSeconds) } };
    }
  }

  function feedRoute(req: http.IncomingMessage, res: http.ServerResponse, route: "issues" | "stream"): void {
    if (feed === undefined) return send(res, route, 404, { status: "error", error: "this kubecano serves no issue feed" });
    if (checkAuth !== undefined && !checkAuth(req.headers.authorization)) {
      res.setHeader("WWW-Authenticate", authChallenge(config.auth));
      logOnce.log(log, "warn", "reject:feed_auth", { code: 401, remote: req.socket.remoteAddress }, "refused an issue feed request (401): missing or wrong credentials");
      return send(res, route, 401, { status: "error", error: req.headers.authorization === undefined ? "authentication required: send the webhook's credentials in the Authorization header (kubecano tui --token)" : "invalid credentials" });
    }
    const query = new URL(req.url ?? "/", "http://localhost").searchParams;
    const reply = route === "issues" ? feed.list(query) : feed.stream(req, res, query);
    if (reply === undefined) return void count(route, 200);
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    return send(res, route, reply.status, reply.body);
  }

  function reject(req: http.IncomingMessage, reason: string, code: number, detail?: string): void {
    rejected(req.socket.remoteAddress, reason, code, detail);
  }

  function rejected(remote: string | undefined, reason: string, code: number, detail?: string): void {
    logOnce.log(log, "warn", `reject:${reason}`, { code, reason, remote }, `refused a webhook request (${code})${detail !== undefined ? `: ${detail}` : ""}`);
  }

  const answered = new Map<string, CountCell>();
  /** kubecano_http_requests_total, counted as plain numbers (Metrics.count). */
  function count(route: Route, code: number): void {
    const key = `${route} ${code}`;
    let cell = answered.get(key);
    if (cell === undefined) answered.set(key, (cell = metrics.count(metrics.httpRequests, { route, code: String(code) })));
    cell.inc();
  }

  function send(res: http.ServerResponse, route: Route, code: number, body: unknown, close = false): void {
    count(route, code);
    const text = `${JSON.stringify(body)}\n`;
    const headers: http.OutgoingHttpHeaders = { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store" };
    // A refused body may still be arriving: closing is cheaper than reading it.
    if (close) headers["Connection"] = "close";
    res.writeHead(code, headers);
    res.end(res.req.method === "HEAD" ? undefined : text);
  }

  return {
    server,
    listen: () =>
      new Promise<AddressInfo>((resolve, reject) => {
        const onError = (e: Error): void => reject(e);
        listener.once("error", onError);
        listener.listen(config.port, config.host, () => {
          listener.off("error", onError);
          // node:http starts checking its connections' timeouts when it listens; with the fast path in front it never does itself.
          if (listener !== server) server.emit("listening");
          resolve(listener.address() as AddressInfo);
        });
      }),
    close: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        ready = false;
        // Feed streams never end on their own: end them, or close() would wait out the grace period.
        feed?.close();
        fast?.close();
        const t = setTimeout(() => {
          server.closeAllConnections();
          fast?.destroyAll();
        }, graceMs);
        t.unref();
        listener.close(() => {
          clearTimeout(t);
          resolve();
        });
        // node:http's own close (timeout checker, idle connections), also when it did not listen itself.
        if (listener !== server) server.close(() => undefined);
        server.closeIdleConnections();
      }),
    markNotReady: () => {
      ready = false;
    },
  };
}

/** Reads the body up to `max` bytes; stops reading (and the caller closes) past it. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | "too_large" | "aborted"> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve("too_large");
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (v: Buffer | "too_large" | "aborted"): void => {
      if (done) return;
      done = true;
      req.off("data", onData);
      resolve(v);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        finish("too_large");
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => finish(Buffer.concat(chunks, size)));
    req.once("error", () => finish("aborted"));
    req.once("close", () => finish(req.complete ? Buffer.concat(chunks, size) : "aborted"));
  });
}

function pathOf(req: http.IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const p = q >= 0 ? url.slice(0, q) : url;
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
}

function truncateForMessage(s: string): string {
  return s.length > 100 ? `${s.slice(0, 99)}…` : s;
}

/** A Content-Type value's media type, lower-case, without parameters. */
function mediaType(value: string): string {
  return value.split(";")[0]!.trim().toLowerCase();
}

/** application/json and the +json types (application/vnd.x+json). */
function isJsonMediaType(type: string): boolean {
  return type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type);
}
