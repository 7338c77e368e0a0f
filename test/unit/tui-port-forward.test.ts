/**
 * `kubecano tui --context`: finding the kubecano pod through the Kubernetes
 * fake, and forwarding a local port to it through client-node's PortForward.
 * The fake speaks no WebSocket, so a small front server here passes the REST
 * calls on to it and answers pods/portforward itself, as the API server and
 * kubelet do (RFC 6455 framing, the channel.k8s.io protocol: one byte of
 * channel, the port number first on each channel), connecting to a real
 * kubecano feed on 127.0.0.1.
 */
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { serverSchema } from "../../src/config/schema.js";
import { createIssue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import type { EngineEvents } from "../../src/delivery/engine.js";
import { OperationError } from "../../src/errors.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Metrics } from "../../src/observability/metrics.js";
import { FeedHub } from "../../src/server/feed.js";
import { createServer, type KubecanoServer } from "../../src/server/http.js";
import { HttpFeedClient } from "../../src/tui/feed-client.js";
import { forwardToKubecano, httpPort, pickPod, type Forward } from "../../src/tui/port-forward.js";
import { IssueStore } from "../../src/tui/store.js";
import { pod, startKubeFake, type KubeFake } from "../fakes/kube.js";

const LABELS = { "app.kubernetes.io/name": "kubecano", "app.kubernetes.io/instance": "kubecano" };

interface Front {
  readonly url: string;
  /** Port-forward requests received: namespace/pod:port. */
  readonly forwards: string[];
  close(): Promise<void>;
}

/** REST to the fake; pods/portforward answered here, connecting every forward to `target`. */
async function front(kube: KubeFake, target: number): Promise<Front> {
  const forwards: string[] = [];
  const upstream = new URL(kube.url);
  const server = http.createServer((req, res) => {
    const p = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    p.on("error", () => res.destroy());
    req.pipe(p);
  });
  const sockets = new Set<net.Socket>();
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward\?ports=(\d+)$/.exec(req.url ?? "");
    const key = req.headers["sec-websocket-key"];
    if (m === null || typeof key !== "string") {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    forwards.push(`${m[1]}/${m[2]}:${m[3]}`);
    const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n`);
    const port = Number(m[3]);
    const portBytes = Buffer.from([port & 0xff, port >> 8]);
    // Each channel starts with the port number: data (0), then error (1).
    socket.write(frame(2, Buffer.concat([Buffer.from([0]), portBytes])));
    socket.write(frame(2, Buffer.concat([Buffer.from([1]), portBytes])));
    const conn = net.connect(target, "127.0.0.1");
    conn.on("data", (d: Buffer) => socket.write(frame(2, Buffer.concat([Buffer.from([0]), d]))));
    conn.on("end", () => {
      socket.write(frame(8, Buffer.alloc(0)));
      socket.end();
    });
    // As the kubelet does: the reason on the error channel, then the end.
    conn.on("error", (e: NodeJS.ErrnoException) => {
      socket.write(frame(2, Buffer.concat([Buffer.from([1]), Buffer.from(`error forwarding port ${port} to pod ${m[2]}: dial tcp4 127.0.0.1:${port}: connect: ${e.code === "ECONNREFUSED" ? "connection refused" : e.message}`)])));
      socket.end(frame(8, Buffer.alloc(0)));
    });
    socket.on("error", () => conn.destroy());
    socket.on("close", () => conn.destroy());
    let buf = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const f = parseFrame(buf);
        if (f === undefined) break;
        buf = buf.subarray(f.size);
        if (f.opcode === 8) {
          conn.end();
          socket.end(frame(8, Buffer.alloc(0)));
        } else if (f.opcode === 9) {
          socket.write(frame(10, f.payload));
        } else if ((f.opcode === 2 || f.opcode === 0) && f.payload.length > 1 && f.payload[0] === 0) {
          conn.write(f.payload.subarray(1));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    forwards,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An unmasked server frame. */
function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]) : Buffer.concat([Buffer.from([0x80 | opcode, 127]), u64(len)]);
  return Buffer.concat([head, payload]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** A (masked) client frame from the start of `buf`, or undefined while incomplete. */
function parseFrame(buf: Buffer): { opcode: number; payload: Buffer; size: number } | undefined {
  if (buf.length < 2) return undefined;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const maskAt = at;
  if (masked) at += 4;
  if (buf.length < at + len) return undefined;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= buf[maskAt + (i % 4)]!;
  return { opcode, payload, size: at + len };
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function feedDaemon(): Promise<{ port: number; engine: EventEmitter<EngineEvents>; server: KubecanoServer }> {
  const hub = new FeedHub({ recent: () => [], depth: () => 0 });
  const engine = new EventEmitter<EngineEvents>();
  hub.attach(engine);
  const server = createServer({
    config: serverSchema.parse({ host: "127.0.0.1", port: 0 }),
    log: silentLogger(),
    metrics: new Metrics({ defaultMetrics: false }),
    version: "test",
    ingestAlertmanager: async () => ({ kind: "accepted", alerts: 0, issues: 0, deliveries: 0, duplicates: 0 }),
    feed: hub,
  });
  const addr = await server.listen();
  cleanup.push(() => server.close(100));
  return { port: addr.port, engine, server };
}

async function cluster(): Promise<{ kube: KubeFake; env: NodeJS.ProcessEnv; front: (target: number) => Promise<Front> }> {
  const kube = await startKubeFake();
  cleanup.push(() => kube.close());
  const env: NodeJS.ProcessEnv = { HOME: "/nonexistent" };
  return {
    kube,
    env,
    front: async (target) => {
      const f = await front(kube, target);
      cleanup.push(() => f.close());
      const dir = await import("node:fs/promises").then((fs) => fs.mkdtemp("/tmp/kubecano-pf-"));
      const file = `${dir}/kubeconfig`;
      await import("node:fs/promises").then((fs) => fs.writeFile(file, kube.kubeconfigYaml().split(kube.url).join(f.url)));
      cleanup.push(() => import("node:fs/promises").then((fs) => fs.rm(dir, { recursive: true, force: true })));
      env["KUBECONFIG"] = file;
      return f;
    },
  };
}

const running = (name: string, namespace: string, extra: Partial<Parameters<typeof pod>[0]> = {}) =>
  pod({ name, namespace, node: "node-1", labels: LABELS, containers: [{ name: "kubecano", ports: [{ name: "metrics", containerPort: 9090 }, { name: "http", containerPort: 8080 }] }], ...extra });

describe("kubecano tui --context", () => {
  it("finds the running, ready kubecano pod and forwards to its http port; the feed works through it", async () => {
    const daemon = await feedDaemon();
    const { kube, env, front: mkFront } = await cluster();
    const f = await mkFront(daemon.port);
    kube.add(running("kubecano-old", "monitoring", { createdAt: new Date(Date.now() - 3_600_000), phase: "Failed" }));
    kube.add(running("kubecano-5d8f", "monitoring", { createdAt: new Date(Date.now() - 60_000) }));
    kube.add(pod({ name: "unrelated", namespace: "monitoring", node: "node-1" }));
    let forward: Forward | undefined;
    try {
      forward = await forwardToKubecano({ context: "fake", env });
      expect(forward).toMatchObject({ namespace: "monitoring", pod: "kubecano-5d8f", remotePort: 8080 });
      expect(forward.description).toMatch(/^fake: monitoring\/kubecano-5d8f:8080 via 127\.0\.0\.1:\d+$/);
      // The list went across namespaces with the chart's label.
      expect(kube.requests.some((r) => r.path === "/api/v1/pods" && r.query["labelSelector"] === "app.kubernetes.io/name=kubecano")).toBe(true);

      const client = new HttpFeedClient({ url: forward.url, initialBackoffMs: 20 });
      cleanup.push(() => client.stop());
      const store = new IssueStore();
      store.follow(client);
      client.start();
      await until(() => store.connection.kind === "live", "live through the forward");
      const issue = createIssue({ title: "through the tunnel", aggregationKey: "X", severity: "HIGH", status: "FIRING", source: "prometheus", type: "alert", subject: subjectFromLabels({}), startsAt: new Date().toISOString(), clusterName: "c" });
      daemon.engine.emit("accepted", [issue], [{ destinations: ["slack"] }]);
      await until(() => store.get(issue.id) !== undefined, "the Issue through the forward");
      expect(f.forwards.length).toBeGreaterThanOrEqual(2);
      expect(new Set(f.forwards)).toEqual(new Set(["monitoring/kubecano-5d8f:8080"]));
    } finally {
      await forward?.close();
    }
  });

  it("looks only in --namespace when given, and says what it found when nothing runs", async () => {
    const daemon = await feedDaemon();
    const { kube, env, front: mkFront } = await cluster();
    await mkFront(daemon.port);
    kube.add(running("kubecano-a", "monitoring"));
    kube.add(running("kubecano-b", "staging", { phase: "Pending", node: "" }));
    const err = await forwardToKubecano({ context: "fake", namespace: "staging", env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationError);
    expect((err as Error).message).toMatch(/no running kubecano pod \(label app\.kubernetes\.io\/name=kubecano\) in namespace staging .*found staging\/kubecano-b Pending, none running and ready/);
    const none = await forwardToKubecano({ context: "fake", namespace: "empty", env }).catch((e: unknown) => e);
    expect((none as OperationError).hint).toMatch(/--url/);
  });

  it("falls back to the context's namespace without the right to list every namespace", async () => {
    const daemon = await feedDaemon();
    const { kube, env, front: mkFront } = await cluster();
    await mkFront(daemon.port);
    kube.add(running("kubecano-x", "default"));
    kube.forbid((r) => r.path === "/api/v1/pods");
    const forward = await forwardToKubecano({ context: "fake", env });
    cleanup.push(() => forward.close());
    expect(forward.pod).toBe("kubecano-x");
  });

  it("tells why a connection failed in the pod (the error channel) and closes it", async () => {
    const daemon = await feedDaemon();
    const closedPort = daemon.port;
    await daemon.server.close(100);
    const { kube, env, front: mkFront } = await cluster();
    await mkFront(closedPort);
    kube.add(running("kubecano-a", "monitoring"));
    const errors: string[] = [];
    const forward = await forwardToKubecano({ context: "fake", env, onError: (m) => errors.push(m) });
    cleanup.push(() => forward.close());
    await expect(fetch(`${forward.url}/api/issues`, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow();
    await until(() => errors.length > 0, "the error");
    expect(errors[0]).toMatch(/^port-forward to monitoring\/kubecano-a:8080: error forwarding port 8080 .*connection refused/);
  });

  it("refuses an unknown context with the known ones", async () => {
    const { env, front: mkFront } = await cluster();
    await mkFront(1);
    await expect(forwardToKubecano({ context: "prod", env })).rejects.toThrow(/no context "prod"/);
  });
});

describe("pickPod and httpPort", () => {
  it("prefers the newest running and ready pod; the port named http, else the first, else 8080", () => {
    const at = (min: number): string => new Date(Date.UTC(2026, 0, 1, 0, min)).toISOString();
    const mk = (name: string, created: string, ready: boolean, phase = "Running", deleting = false): never =>
      ({ metadata: { name, creationTimestamp: created, ...(deleting ? { deletionTimestamp: created } : {}) }, status: { phase, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] } }) as never;
    expect(pickPod([mk("a", at(1), true), mk("b", at(5), true), mk("c", at(9), false), mk("d", at(9), true, "Running", true)])?.metadata?.name).toBe("b");
    expect(pickPod([mk("c", at(9), false)])).toBeUndefined();
    expect(httpPort({ spec: { containers: [{ name: "x", ports: [{ containerPort: 9000 }, { name: "http", containerPort: 8081 }] }] } } as never)).toBe(8081);
    expect(httpPort({ spec: { containers: [{ name: "x", ports: [{ containerPort: 9000 }] }] } } as never)).toBe(9000);
    expect(httpPort({ spec: { containers: [{ name: "x" }] } } as never)).toBe(8080);
  });
});

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
