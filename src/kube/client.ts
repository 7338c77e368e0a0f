import type {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CoreV1Event,
  KubeConfig,
  V1CronJob,
  V1DaemonSet,
  V1Deployment,
  V1Job,
  V1Node,
  V1Pod,
  V1ReplicaSet,
  V1StatefulSet,
} from "@kubernetes/client-node";

/** A failed call to the Kubernetes API, with what a person needs to act on it. */
export class KubeError extends Error {
  /** HTTP status, or 0 when the API server could not be reached. */
  readonly status: number;
  readonly reason: string;
  constructor(message: string, status: number, reason: string) {
    super(message);
    this.name = "KubeError";
    this.status = status;
    this.reason = reason;
  }
  /**
   * The API server could not be reached at all. A call that timed out is not
   * counted: one slow answer must not switch enrichment off for every Issue.
   */
  get unreachable(): boolean {
    return this.status === 0 && this.reason !== "Timeout";
  }
}

export interface LogOptions {
  readonly container?: string | undefined;
  readonly previous?: boolean | undefined;
  readonly tailLines?: number | undefined;
  readonly limitBytes?: number | undefined;
  readonly sinceSeconds?: number | undefined;
  readonly timestamps?: boolean | undefined;
}

export interface ListOptions {
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  readonly limit?: number | undefined;
}

/**
 * What workflow actions may read from the cluster: read-only, one object or
 * one list per call. `get*` resolve undefined for 404. Everything else
 * rejects with a KubeError. The one implementation wraps client-node; tests
 * run it against a local fake API server.
 */
export interface KubeReader {
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  listPods(namespace: string | undefined, opts?: ListOptions): Promise<V1Pod[]>;
  readPodLog(namespace: string, name: string, opts: LogOptions): Promise<string>;
  listEvents(namespace: string | undefined, opts?: ListOptions): Promise<CoreV1Event[]>;
  getReplicaSet(namespace: string, name: string): Promise<V1ReplicaSet | undefined>;
  listReplicaSets(namespace: string, opts?: ListOptions): Promise<V1ReplicaSet[]>;
  getDeployment(namespace: string, name: string): Promise<V1Deployment | undefined>;
  getStatefulSet(namespace: string, name: string): Promise<V1StatefulSet | undefined>;
  getDaemonSet(namespace: string, name: string): Promise<V1DaemonSet | undefined>;
  getJob(namespace: string, name: string): Promise<V1Job | undefined>;
  getCronJob(namespace: string, name: string): Promise<V1CronJob | undefined>;
  getNode(name: string): Promise<V1Node | undefined>;
}

export interface KubeClientOptions {
  /** Upper bound of one API call. */
  readonly timeoutMs?: number;
}

/** KubeReader over client-node 1.4 (typed APIs; bodies resolve directly). */
export class KubeClient implements KubeReader {
  private constructor(
    private readonly core: CoreV1Api,
    private readonly apps: AppsV1Api,
    private readonly batch: BatchV1Api,
    private readonly timeoutMs: number,
  ) {}

  static async create(kc: KubeConfig, opts: KubeClientOptions = {}): Promise<KubeClient> {
    const k8s = await import("@kubernetes/client-node");
    return new KubeClient(kc.makeApiClient(k8s.CoreV1Api), kc.makeApiClient(k8s.AppsV1Api), kc.makeApiClient(k8s.BatchV1Api), opts.timeoutMs ?? 5_000);
  }

  getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    return this.get(`pod ${namespace}/${name}`, () => this.core.readNamespacedPod({ namespace, name }));
  }

  async listPods(namespace: string | undefined, opts: ListOptions = {}): Promise<V1Pod[]> {
    const q = listQuery(opts);
    const r = await this.call(`pods${namespace !== undefined ? ` in ${namespace}` : ""}`, () =>
      namespace !== undefined ? this.core.listNamespacedPod({ namespace, ...q }) : this.core.listPodForAllNamespaces(q),
    );
    return r.items;
  }

  readPodLog(namespace: string, name: string, opts: LogOptions): Promise<string> {
    return this.call(`logs of pod ${namespace}/${name}${opts.container !== undefined ? ` container ${opts.container}` : ""}${opts.previous === true ? " (previous)" : ""}`, () =>
      this.core.readNamespacedPodLog({
        namespace,
        name,
        ...(opts.container !== undefined ? { container: opts.container } : {}),
        ...(opts.previous !== undefined ? { previous: opts.previous } : {}),
        ...(opts.tailLines !== undefined ? { tailLines: opts.tailLines } : {}),
        ...(opts.limitBytes !== undefined ? { limitBytes: opts.limitBytes } : {}),
        ...(opts.sinceSeconds !== undefined ? { sinceSeconds: opts.sinceSeconds } : {}),
        ...(opts.timestamps !== undefined ? { timestamps: opts.timestamps } : {}),
      }),
    );
  }

  async listEvents(namespace: string | undefined, opts: ListOptions = {}): Promise<CoreV1Event[]> {
    const q = listQuery(opts);
    const r = await this.call(`events${namespace !== undefined ? ` in ${namespace}` : ""}`, () =>
      namespace !== undefined ? this.core.listNamespacedEvent({ namespace, ...q }) : this.core.listEventForAllNamespaces(q),
    );
    return r.items;
  }

  getReplicaSet(namespace: string, name: string): Promise<V1ReplicaSet | undefined> {
    return this.get(`replicaset ${namespace}/${name}`, () => this.apps.readNamespacedReplicaSet({ namespace, name }));
  }

  async listReplicaSets(namespace: string, opts: ListOptions = {}): Promise<V1ReplicaSet[]> {
    return (await this.call(`replicasets in ${namespace}`, () => this.apps.listNamespacedReplicaSet({ namespace, ...listQuery(opts) }))).items;
  }

  getDeployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    return this.get(`deployment ${namespace}/${name}`, () => this.apps.readNamespacedDeployment({ namespace, name }));
  }

  getStatefulSet(namespace: string, name: string): Promise<V1StatefulSet | undefined> {
    return this.get(`statefulset ${namespace}/${name}`, () => this.apps.readNamespacedStatefulSet({ namespace, name }));
  }

  getDaemonSet(namespace: string, name: string): Promise<V1DaemonSet | undefined> {
    return this.get(`daemonset ${namespace}/${name}`, () => this.apps.readNamespacedDaemonSet({ namespace, name }));
  }

  getJob(namespace: string, name: string): Promise<V1Job | undefined> {
    return this.get(`job ${namespace}/${name}`, () => this.batch.readNamespacedJob({ namespace, name }));
  }

  getCronJob(namespace: string, name: string): Promise<V1CronJob | undefined> {
    return this.get(`cronjob ${namespace}/${name}`, () => this.batch.readNamespacedCronJob({ namespace, name }));
  }

  getNode(name: string): Promise<V1Node | undefined> {
    return this.get(`node ${name}`, () => this.core.readNode({ name }));
  }

  private async get<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.call(what, fn);
    } catch (e) {
      if (e instanceof KubeError && e.status === 404) return undefined;
      throw e;
    }
  }

  /**
   * Runs one API call with a deadline. client-node 1.4 takes no AbortSignal
   * per call, so a call past the deadline is abandoned (its socket closes
   * when the server answers or the connection dies), not cancelled.
   */
  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new KubeError(`reading ${what}: the API server did not answer within ${this.timeoutMs} ms`, 0, "Timeout")), this.timeoutMs);
      fn().then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(toKubeError(e, what));
        },
      );
    });
  }
}

function listQuery(opts: ListOptions): { labelSelector?: string; fieldSelector?: string; limit?: number } {
  return {
    ...(opts.labelSelector !== undefined ? { labelSelector: opts.labelSelector } : {}),
    ...(opts.fieldSelector !== undefined ? { fieldSelector: opts.fieldSelector } : {}),
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
  };
}

/** client-node's ApiException (code + JSON Status body) or a transport error, as a KubeError. */
export function toKubeError(e: unknown, what: string): KubeError {
  if (e instanceof KubeError) return e;
  const err = e as { code?: unknown; body?: unknown; message?: unknown; cause?: { code?: unknown } };
  if (typeof err.code === "number") {
    let message = "";
    let reason = "";
    const body = typeof err.body === "string" ? safeJson(err.body) : err.body;
    if (body !== null && typeof body === "object") {
      const b = body as { message?: unknown; reason?: unknown };
      if (typeof b.message === "string") message = b.message;
      if (typeof b.reason === "string") reason = b.reason;
    } else if (typeof err.body === "string") {
      message = err.body.trim().slice(0, 300);
    }
    const hint = err.code === 401 ? " (the credentials were refused)" : err.code === 403 ? " (kubecano's service account lacks this permission: see README, RBAC)" : "";
    return new KubeError(`reading ${what}: HTTP ${err.code}${message !== "" ? `: ${message}` : ""}${hint}`, err.code, reason || `HTTP${err.code}`);
  }
  const code = typeof err.cause?.code === "string" ? err.cause.code : typeof err.code === "string" ? err.code : undefined;
  const msg = typeof err.message === "string" ? err.message.split("\n")[0]! : String(e);
  return new KubeError(`reading ${what}: cannot reach the API server: ${code ?? msg}`, 0, code ?? "Unreachable");
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return null;
  }
}
