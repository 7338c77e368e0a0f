import net from "node:net";
import { Writable } from "node:stream";
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import { InputError, OperationError, errorMessage } from "../errors.js";
import { KubeClient, KubeError } from "../kube/client.js";
import { resolveKubeConfig } from "../kube/config.js";

export const KUBECANO_POD_LABEL = "app.kubernetes.io/name=kubecano";

export interface ForwardOptions {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  /** Where to look for the pod; default: every namespace (or the context's, without the right to list them all). */
  readonly namespace?: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** Told about connections that fail after the forward is up. */
  readonly onError?: (message: string) => void;
}

export interface Forward {
  /** http://127.0.0.1:PORT, forwarded to the pod. */
  readonly url: string;
  readonly namespace: string;
  readonly pod: string;
  readonly remotePort: number;
  /** "prod: kubecano/kubecano-7d9f:8080", for the header. */
  readonly description: string;
  close(): Promise<void>;
}

/**
 * `kubecano tui --context CTX`: finds a running, ready kubecano pod (label
 * app.kubernetes.io/name=kubecano, the Helm chart's) and forwards a local
 * port to its HTTP port, as `kubectl port-forward` does: a local
 * net.Server whose every connection is one client-node PortForward
 * (a WebSocket to the API server's pods/portforward).
 */
export async function forwardToKubecano(opts: ForwardOptions): Promise<Forward> {
  const resolved = await resolveKubeConfig({ kubeconfig: opts.kubeconfig, context: opts.context, env: opts.env });
  if (resolved === undefined) throw new InputError("no kubeconfig found to reach the cluster", "pass --kubeconfig FILE, set KUBECONFIG, or use --url to reach kubecano directly");
  const kc = resolved.kc;
  const client = await KubeClient.create(kc, { timeoutMs: 15_000 });
  const contextNs = kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  let pods: V1Pod[];
  let where: string;
  try {
    if (opts.namespace !== undefined) {
      where = `namespace ${opts.namespace}`;
      pods = await client.listPods(opts.namespace, { labelSelector: KUBECANO_POD_LABEL });
    } else {
      where = "any namespace";
      try {
        pods = await client.listPods(undefined, { labelSelector: KUBECANO_POD_LABEL });
      } catch (e) {
        if (!(e instanceof KubeError && e.status === 403)) throw e;
        // Not allowed to list every namespace: the context's own is the best guess.
        where = `namespace ${contextNs}`;
        pods = await client.listPods(contextNs, { labelSelector: KUBECANO_POD_LABEL });
      }
    }
  } catch (e) {
    throw new OperationError(`cannot look for the kubecano pod in ${resolved.source}: ${errorMessage(e)}`, "check the context with `kubectl get pods -A -l app.kubernetes.io/name=kubecano`");
  }
  const pod = pickPod(pods);
  if (pod === undefined) {
    const found = pods.length > 0 ? ` (found ${pods.map((p) => `${p.metadata?.namespace}/${p.metadata?.name} ${p.status?.phase ?? "?"}`).join(", ")}, none running and ready)` : "";
    throw new OperationError(`no running kubecano pod (label ${KUBECANO_POD_LABEL}) in ${where} of ${resolved.source}${found}`, opts.namespace === undefined ? "pass --namespace NS, or use --url with your own port-forward" : "check the namespace, or use --url with your own port-forward");
  }
  const namespace = pod.metadata!.namespace!;
  const name = pod.metadata!.name!;
  const remotePort = httpPort(pod);
  const server = await listenLocally(kc, namespace, name, remotePort, opts.onError);
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    namespace,
    pod: name,
    remotePort,
    description: `${resolved.context}: ${namespace}/${name}:${remotePort} via 127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets.get(server) ?? []) s.destroy();
      }),
  };
}

/** The newest pod that runs, is ready and is not being deleted. */
export function pickPod(pods: readonly V1Pod[]): V1Pod | undefined {
  const ok = pods.filter(
    (p) => p.status?.phase === "Running" && p.metadata?.deletionTimestamp == null && (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
  );
  const time = (p: V1Pod): number => {
    const t = p.metadata?.creationTimestamp as unknown;
    return t instanceof Date ? t.getTime() : typeof t === "string" ? Date.parse(t) : 0;
  };
  return ok.sort((a, b) => time(b) - time(a))[0];
}

/** The container port named "http" (the chart's), else the first one, else 8080. */
export function httpPort(pod: V1Pod): number {
  const ports = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
  return ports.find((p) => p.name === "http")?.containerPort ?? ports[0]?.containerPort ?? 8080;
}

const sockets = new WeakMap<net.Server, Set<net.Socket>>();

async function listenLocally(kc: KubeConfig, namespace: string, pod: string, port: number, onError?: (m: string) => void): Promise<net.Server> {
  const { PortForward } = await import("@kubernetes/client-node");
  const forward = new PortForward(kc);
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    socket.on("error", () => socket.destroy());
    // The error channel: the kubelet could not connect to the port in the pod.
    const errors = new Writable({
      write(chunk: Buffer, _enc, cb) {
        // The channel opens with an empty write (its port-number prefix, stripped by client-node).
        const text = chunk.toString("utf8").trim();
        if (text !== "") {
          onError?.(`port-forward to ${namespace}/${pod}:${port}: ${text}`);
          socket.destroy();
        }
        cb();
      },
    });
    forward.portForward(namespace, pod, [port], socket, errors, socket).then(
      (ws) => {
        const w = ws as unknown as { on?: (ev: string, fn: () => void) => void; close(): void; readyState: number };
        w.on?.("close", () => socket.end());
        w.on?.("error", () => socket.destroy());
        socket.once("close", () => {
          if (w.readyState <= 1) w.close();
        });
      },
      (e: unknown) => {
        onError?.(`port-forward to ${namespace}/${pod}:${port} failed: ${describeWsError(e)}`);
        socket.destroy();
      },
    );
  });
  sockets.set(server, open);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

function describeWsError(e: unknown): string {
  const m = (e as { message?: unknown; error?: { message?: unknown } }).error?.message ?? (e as { message?: unknown }).message;
  return typeof m === "string" ? m : errorMessage(e);
}
