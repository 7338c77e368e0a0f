/**
 * The plumbing shared by the HTTP fakes of destinations (Teams, Jira):
 * a node:http server on 127.0.0.1 and an ephemeral port, request bodies read
 * with a cap, and fault injection that applies to the next requests (or the
 * next ones to a given path): an HTTP status (with Retry-After), a request
 * never answered, or a request processed and then cut without an answer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface FakeRequest {
  readonly method: string;
  /** Path without the query string (the query may carry a secret). */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage["headers"];
  readonly text: string;
}

export interface FakeReply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  /** An object is sent as JSON; a string as it is. */
  readonly body?: unknown;
}

export type FaultBody = (status: number) => unknown;

/** Which requests a fault waits for: any (default), or those whose path is this string or matches this pattern. */
export type PathMatch = string | RegExp | undefined;

export interface FakeServer {
  readonly url: string;
  /** The next `count` (default 1) requests (to `path`) get `status`, with Retry-After seconds when given. */
  failNext(status: number, opts?: { retryAfterSeconds?: number; count?: number; path?: PathMatch }): void;
  /** The next request (to `path`) is never answered (until close). */
  hangNext(path?: PathMatch): void;
  /** The next request (to `path`) is handled (its effects happen) and its connection is then cut without an answer. */
  dropNext(path?: PathMatch): void;
  clearFaults(): void;
  close(): Promise<void>;
}

type Fault = ({ kind: "status"; status: number; retryAfterSeconds?: number | undefined } | { kind: "hang" } | { kind: "drop" }) & { path: PathMatch };

function matches(m: PathMatch, path: string): boolean {
  return m === undefined || (typeof m === "string" ? m === path : m.test(path));
}

const MAX_BODY = 10 * 1024 * 1024;

/**
 * Starts a server that runs `handle` for each request, after the injected
 * faults. `faultBody` gives the body of an injected status (the API's error shape).
 */
export async function startFakeServer(handle: (req: FakeRequest) => FakeReply | Promise<FakeReply>, faultBody: FaultBody): Promise<FakeServer> {
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const hung: ServerResponse[] = [];

  const send = (res: ServerResponse, reply: FakeReply): void => {
    const isText = typeof reply.body === "string";
    const payload = reply.body === undefined ? "" : isText ? (reply.body as string) : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      ...(reply.body !== undefined ? { "content-type": isText ? "text/plain; charset=utf-8" : "application/json;charset=UTF-8" } : {}),
      "content-length": Buffer.byteLength(payload),
      ...reply.headers,
    });
    res.end(payload);
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on("end", () => {
      void (async () => {
        const u = new URL(req.url ?? "/", "http://fake");
        const at = faults.findIndex((f) => matches(f.path, u.pathname));
        const fault = at < 0 ? undefined : faults.splice(at, 1)[0];
        if (fault?.kind === "hang") {
          hung.push(res);
          return;
        }
        if (fault?.kind === "status") {
          send(res, { status: fault.status, body: faultBody(fault.status), ...(fault.retryAfterSeconds !== undefined ? { headers: { "retry-after": String(fault.retryAfterSeconds) } } : {}) });
          return;
        }
        if (size > MAX_BODY) {
          send(res, { status: 413, body: faultBody(413) });
          return;
        }
        let reply: FakeReply;
        try {
          reply = await handle({ method: req.method ?? "GET", path: u.pathname, query: u.searchParams, headers: req.headers, text: Buffer.concat(chunks).toString("utf8") });
        } catch (e) {
          reply = { status: 500, body: `fake failed: ${e instanceof Error ? e.message : String(e)}` };
        }
        if (fault?.kind === "drop") {
          req.socket.destroy();
          return;
        }
        send(res, reply);
      })();
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    failNext(status, opts = {}) {
      for (let i = 0; i < (opts.count ?? 1); i++) faults.push({ kind: "status", status, retryAfterSeconds: opts.retryAfterSeconds, path: opts.path });
    },
    hangNext(path) {
      faults.push({ kind: "hang", path });
    },
    dropNext(path) {
      faults.push({ kind: "drop", path });
    },
    clearFaults() {
      faults.length = 0;
    },
    async close() {
      for (const r of hung) r.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
