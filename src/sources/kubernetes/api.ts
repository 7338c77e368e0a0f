import http from "node:http";
import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

/**
 * The Kubernetes API as the watchers and the leader election use it: raw
 * JSON requests (lists, Leases) and client-node's `Watch` for streams.
 *
 * Raw rather than the typed clients because list answers go straight into
 * small projections: the typed clients build a model object with Date
 * fields for every item first, which for 10,000 pods costs seconds and
 * hundreds of MB. Lists and watches both deliver plain JSON (timestamps as
 * strings), so the projections see one shape.
 *
 * One https agent for the life of the client: client-node builds a new
 * agent per call (and per watch reconnect), which a long-running watcher
 * would pile up.
 */

/** A failed request. `status` is the HTTP status, 0 when the server could not be reached. */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(message: string, status: number, reason: string) {
    super(message);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchStream {
  /** Ends the stream; `onEnd` is not called after this. */
  abort(): void;
}

export interface WatchCallbacks {
  /** The server answered 200: events follow. */
  onOpen?(): void;
  onEvent(type: string, object: unknown): void;
  /** The stream ended: `null` when the server closed it normally, else why. */
  onEnd(err: KubeApiError | null): void;
}

type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface KubeApiLike {
  request<T = unknown>(method: "GET" | "POST" | "PUT", path: string, opts?: { query?: Query; body?: unknown; timeoutMs?: number }): Promise<T>;
  watch(path: string, query: Query, cb: WatchCallbacks): WatchStream;
  close(): void;
}

export class KubeApi implements KubeApiLike {
  private agent: http.Agent | undefined;
  private closed = false;
  private readonly server: string;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error("the kubeconfig has no current cluster");
    this.server = cluster.server.replace(/\/+$/, "");
  }

  /** Headers and TLS for one request; the agent is made once and kept. */
  private async options(): Promise<{ headers: Record<string, string>; agent: http.Agent }> {
    const opts: { headers?: Record<string, unknown>; agent?: http.Agent; auth?: string } = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts as never);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === "string" || typeof v === "number") headers[k] = String(v);
    if (opts.auth !== undefined) headers["Authorization"] = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    return { headers, agent: this.adopt(opts.agent) };
  }

  /** Keeps the first agent client-node makes; later ones (made per call) are dropped unused. */
  private adopt(agent: http.Agent | undefined): http.Agent {
    if (this.agent === undefined) this.agent = agent;
    else if (agent !== this.agent) agent?.destroy();
    if (this.agent === undefined) throw new Error("client-node made no agent for this cluster");
    return this.agent;
  }

  async request<T = unknown>(method: "GET" | "POST" | "PUT", path: string, opts: { query?: Query; body?: unknown; timeoutMs?: number } = {}): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const what = `${method} ${path}`;
    let o: Awaited<ReturnType<KubeApi["options"]>>;
    try {
      o = await this.options();
    } catch (e) {
      throw new KubeApiError(`${what}: cannot authenticate: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`, 0, "Auth");
    }
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const mod = url.protocol === "https:" ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          agent: o.agent,
          headers: { Accept: "application/json", ...o.headers, ...(payload !== undefined ? { "Content-Type": "application/json", "Content-Length": String(payload.length) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", (e) => reject(transportError(what, e)));
          res.on("end", () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            let body: unknown;
            try {
              body = text === "" ? undefined : JSON.parse(text);
            } catch {
              body = undefined;
            }
            if (status >= 200 && status < 300) {
              if (body === undefined) reject(new KubeApiError(`${what}: the answer is not JSON`, status, "BadResponse"));
              else resolve(body as T);
              return;
            }
            reject(statusError(what, status, body, text));
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        reject(new KubeApiError(`${what}: no answer within ${timeoutMs} ms`, 0, "Timeout"));
      }, timeoutMs);
      req.on("error", (e) => {
        clearTimeout(timer);
        reject(transportError(what, e));
      });
      req.end(payload);
    });
  }

  watch(path: string, query: Query, cb: WatchCallbacks): WatchStream {
    let done = false;
    let controller: AbortController | undefined;
    const finish = (err: KubeApiError | null): void => {
      if (done) return;
      done = true;
      cb.onEnd(err);
    };
    const what = `watch ${path}`;
    void (async () => {
      const { Watch } = await import("@kubernetes/client-node");
      // client-node's Watch reads only these two members of its config: handing it
      // one that reuses our agent keeps reconnects from making a new agent each.
      const shim = {
        getCurrentCluster: () => this.kc.getCurrentCluster(),
        applyToFetchOptions: async (init: object) => {
          const r = (await this.kc.applyToFetchOptions(init as never)) as { agent?: http.Agent };
          r.agent = this.adopt(r.agent);
          return r;
        },
      } as unknown as KubeConfig;
      try {
        const c = await new Watch(shim).watch(
          path,
          query as Record<string, string | number | boolean | undefined>,
          (type: string, object: unknown) => {
            if (!done) cb.onEvent(type, object);
          },
          (err: unknown) => finish(err === null || err === undefined ? null : watchError(what, err)),
        );
        controller = c;
        if (done) c.abort();
        else cb.onOpen?.();
      } catch (e) {
        finish(watchError(what, e));
      }
    })();
    return {
      abort: () => {
        done = true;
        controller?.abort();
      },
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.agent?.destroy();
  }
}

function transportError(what: string, e: unknown): KubeApiError {
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err.code === "string" ? err.code : undefined;
  const msg = typeof err.message === "string" ? err.message.split("\n")[0]! : String(e);
  return new KubeApiError(`${what}: cannot reach the API server: ${code ?? msg}`, 0, code ?? "Unreachable");
}

function statusError(what: string, status: number, body: unknown, text: string): KubeApiError {
  let message = "";
  let reason = "";
  if (body !== null && typeof body === "object") {
    const b = body as { message?: unknown; reason?: unknown };
    if (typeof b.message === "string") message = b.message;
    if (typeof b.reason === "string") reason = b.reason;
  } else {
    message = text.trim().slice(0, 300);
  }
  const hint = status === 401 ? " (the credentials were refused)" : status === 403 ? " (kubecano's service account lacks this permission: see README, RBAC)" : "";
  return new KubeApiError(`${what}: HTTP ${status}${message !== "" ? `: ${message}` : ""}${hint}`, status, reason || `HTTP${status}`);
}

/** What client-node's Watch reports: a non-200 answer (`statusCode`), a transport error or an abort. */
function watchError(what: string, e: unknown): KubeApiError {
  const err = e as { statusCode?: unknown; message?: unknown };
  if (typeof err.statusCode === "number") {
    const status = err.statusCode;
    const hint = status === 403 ? " (kubecano's service account lacks this permission: see README, RBAC)" : "";
    return new KubeApiError(`${what}: HTTP ${status}${typeof err.message === "string" && err.message !== "" ? ` ${err.message}` : ""}${hint}`, status, status === 410 ? "Expired" : `HTTP${status}`);
  }
  return transportError(what, e);
}

/** A Status object (a watch ERROR event) as a KubeApiError. */
export function statusObjectError(what: string, object: unknown): KubeApiError {
  const s = (object ?? {}) as { code?: unknown; message?: unknown; reason?: unknown };
  const code = typeof s.code === "number" ? s.code : 500;
  return new KubeApiError(`${what}: ${typeof s.message === "string" ? s.message : `error ${code}`}`, code, typeof s.reason === "string" ? s.reason : `HTTP${code}`);
}
