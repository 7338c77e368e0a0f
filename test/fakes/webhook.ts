/**
 * A local webhook receiver for kubecano's `webhook` destination, on node:http
 * (127.0.0.1, an ephemeral port). It records every request (method, path,
 * headers, the exact body bytes, the parsed document), checks the HMAC
 * signature the way docs/destinations/webhook.md tells receivers to, and can
 * misbehave on demand: answer a status (with Retry-After), hang, cut the
 * connection. Receivers treat `kubecano.issue/v1` documents as incidents by
 * fingerprint, which `received()` reports: the first `issue.firing` of a
 * fingerprint opens one, later ones update it, `issue.resolved` closes it.
 *
 * No dependency beyond node built-ins.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface WebhookFakeOptions {
  /** The path kubecano is pointed at (default "/hook"); may carry a query. Other paths answer 404. */
  readonly path?: string;
  /** HMAC key: when set, `signatureOk` is computed for every request. */
  readonly secret?: string;
  /** Requests without this exact Authorization header answer 401. */
  readonly authorization?: string;
  /**
   * Error answers echo the request's path and Authorization header, as some
   * receivers do: kubecano must scrub them from its messages.
   */
  readonly echoOnError?: boolean;
}

export interface WebhookCall {
  readonly seq: number;
  readonly method: string;
  /** Path and query as received. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The exact body bytes. */
  readonly body: Buffer;
  /** The body as JSON; undefined when it is not JSON. */
  readonly json: unknown;
  /** With `secret`: whether X-Kubecano-Signature matches HMAC(secret, `${timestamp}.${body}`). */
  readonly signatureOk: boolean | undefined;
  /** HTTP status answered; undefined while held or when the connection was cut. */
  status: number | undefined;
}

export interface WebhookFake {
  /** The URL to configure: http://127.0.0.1:PORT/hook (with `path`). */
  readonly url: string;
  readonly origin: string;
  readonly calls: readonly WebhookCall[];
  /** Parsed bodies of the requests answered 2xx, in arrival order. */
  documents(): Record<string, unknown>[];
  /** "open" | "update" | "resolve" per accepted document of a fingerprint, in arrival order. */
  received(fingerprint: string): ("open" | "update" | "resolve")[];
  /** Requests answered 2xx. */
  accepted(): number;
  /** The next `count` (default 1) requests answer `status` (with Retry-After when given). */
  failNext(status: number, opts?: { count?: number; retryAfterSeconds?: number; body?: string }): void;
  /** The next `count` (default 1) requests are held unanswered until `release()` or close. */
  hangNext(count?: number): void;
  /** Lets held requests (and later ones) through. */
  release(): void;
  /** The next `count` (default 1) requests have their connection destroyed without an answer. */
  closeNext(count?: number): void;
  /** Resolves once `predicate` holds (checked after every request); rejects after `timeoutMs` (default 10 s). */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

type Fault = { kind: "status"; status: number; retryAfter: number | undefined; body: string | undefined } | { kind: "hang" } | { kind: "close" };

export async function startWebhookFake(opts: WebhookFakeOptions = {}): Promise<WebhookFake> {
  const hookPath = opts.path ?? "/hook";
  const calls: WebhookCall[] = [];
  let faults: Fault[] = [];
  const held = new Set<() => void>();
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let seq = 0;
  const notify = (): void => {
    for (const w of [...waiters]) w();
  };

  const answer = (res: ServerResponse, call: WebhookCall, status: number, body: string, headers: Record<string, string> = {}): void => {
    call.status = status;
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(body);
    notify();
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    let json: unknown;
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {
      json = undefined;
    }
    const call: WebhookCall = { seq: ++seq, method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, json, signatureOk: opts.secret !== undefined ? verify(opts.secret, req, body) : undefined, status: undefined };
    calls.push(call);
    const echo = opts.echoOnError === true ? `, "request": ${JSON.stringify({ url: call.url, authorization: req.headers["authorization"] ?? null })}` : "";
    const fault = faults.shift();
    if (fault?.kind === "close") {
      req.socket.destroy();
      notify();
      return;
    }
    if (fault?.kind === "hang") {
      held.add(() => respond());
      notify();
      return;
    }
    if (fault?.kind === "status") {
      answer(res, call, fault.status, fault.body ?? `{"error": "injected ${fault.status}"${echo}}`, fault.retryAfter !== undefined ? { "retry-after": String(fault.retryAfter) } : {});
      return;
    }
    respond();

    function respond(): void {
      if (res.destroyed) return;
      if (call.url !== hookPath) return answer(res, call, 404, `{"error": "no hook here"${echo}}`);
      if (call.method !== "POST" && call.method !== "PUT") return answer(res, call, 405, `{"error": "method not allowed"}`);
      if (opts.authorization !== undefined && req.headers["authorization"] !== opts.authorization) return answer(res, call, 401, `{"error": "bad credentials"${echo}}`);
      if (call.json === undefined) return answer(res, call, 400, `{"error": "body is not JSON"}`);
      answer(res, call, 200, `{"ok": true}`);
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks)));
    req.on("error", () => undefined);
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;

  const accepted = (): WebhookCall[] => calls.filter((c) => c.status !== undefined && c.status >= 200 && c.status < 300);
  const fake: WebhookFake = {
    url: `${origin}${hookPath}`,
    origin,
    calls,
    documents: () => accepted().map((c) => c.json as Record<string, unknown>),
    received(fingerprint) {
      const out: ("open" | "update" | "resolve")[] = [];
      let open = false;
      for (const d of fake.documents()) {
        const issue = d["issue"] as { fingerprint?: unknown } | undefined;
        if (issue?.fingerprint !== fingerprint) continue;
        if (d["event"] === "issue.resolved") {
          out.push("resolve");
          open = false;
        } else {
          out.push(open ? "update" : "open");
          open = true;
        }
      }
      return out;
    },
    accepted: () => accepted().length,
    failNext(status, o = {}) {
      for (let i = 0; i < (o.count ?? 1); i++) faults.push({ kind: "status", status, retryAfter: o.retryAfterSeconds, body: o.body });
    },
    hangNext(count = 1) {
      for (let i = 0; i < count; i++) faults.push({ kind: "hang" });
    },
    release() {
      faults = faults.filter((f) => f.kind !== "hang");
      for (const r of [...held]) r();
      held.clear();
    },
    closeNext(count = 1) {
      for (let i = 0; i < count; i++) faults.push({ kind: "close" });
    },
    waitFor(predicate, timeoutMs = 10_000) {
      return new Promise<void>((resolve, reject) => {
        if (predicate()) return resolve();
        const check = (): void => {
          if (!predicate()) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`webhook fake: condition not met within ${timeoutMs} ms (${calls.length} requests, ${accepted().length} accepted)`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    reset() {
      faults = [];
      held.clear();
      calls.length = 0;
    },
    async close() {
      faults = [];
      held.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
    },
  };
  return fake;
}

/** The check docs/destinations/webhook.md describes: HMAC-SHA256(secret, `${timestamp}.${body}`), compared in constant time. */
function verify(secret: string, req: IncomingMessage, body: Buffer): boolean {
  const ts = req.headers["x-kubecano-timestamp"];
  const sig = req.headers["x-kubecano-signature"];
  if (typeof ts !== "string" || typeof sig !== "string" || !sig.startsWith("sha256=")) return false;
  const expected = createHmac("sha256", secret).update(`${ts}.`).update(body).digest();
  const given = Buffer.from(sig.slice("sha256=".length), "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
