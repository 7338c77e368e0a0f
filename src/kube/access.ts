import type { Logger } from "../observability/logger.js";
import { KubeClient, KubeError, type KubeReader } from "./client.js";
import { resolveKubeConfig, type KubeConfigOptions } from "./config.js";

export interface ClusterStatus {
  readonly configured: boolean;
  readonly reachable: boolean;
  /** For /readyz and `replay --explain`: where the cluster is, or why there is none. */
  readonly detail: string;
}

/**
 * kubecano's one handle on the cluster. Enrichment is optional: with no
 * kubeconfig, or while the API server cannot be reached, `reader()` returns
 * undefined and Issues go out without cluster context. That is logged once
 * when it starts and once when it ends, never once per alert.
 */
export class ClusterAccess {
  private down: { since: number; why: string } | undefined;
  private nextProbe = 0;

  private constructor(
    private readonly client: KubeReader | undefined,
    private readonly source: string,
    private readonly log: Logger,
    private readonly probeEveryMs: number,
  ) {}

  /** Resolves credentials (kubectl's order). A bad --kubeconfig / --context throws InputError. */
  static async open(opts: KubeConfigOptions & { log: Logger; timeoutMs?: number; disabled?: boolean }): Promise<ClusterAccess> {
    if (opts.disabled === true) return new ClusterAccess(undefined, "disabled (--no-cluster)", opts.log, 30_000);
    const resolved = await resolveKubeConfig(opts);
    if (resolved === undefined) {
      opts.log.warn("no Kubernetes credentials found (no --kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster service account): Issues are sent without cluster enrichment");
      return new ClusterAccess(undefined, "no kubeconfig found", opts.log, 30_000);
    }
    const client = await KubeClient.create(resolved.kc, { timeoutMs: opts.timeoutMs ?? 5_000 });
    return new ClusterAccess(client, resolved.source, opts.log, 30_000);
  }

  /** For tests and embedding: an already built reader (`probeEveryMs`: how long to wait, once unreachable, before trying again; default 30 s). */
  static of(reader: KubeReader | undefined, source: string, log: Logger, opts: { probeEveryMs?: number } = {}): ClusterAccess {
    return new ClusterAccess(reader, source, log, opts.probeEveryMs ?? 30_000);
  }

  /** The reader while the cluster is believed reachable; after a failure, one probe attempt per interval. */
  reader(now = Date.now()): KubeReader | undefined {
    if (this.client === undefined) return undefined;
    if (this.down !== undefined && now < this.nextProbe) return undefined;
    return this.tracked;
  }

  status(): ClusterStatus {
    if (this.client === undefined) return { configured: false, reachable: false, detail: `${this.source}: Issues are sent without cluster enrichment` };
    if (this.down !== undefined) return { configured: true, reachable: false, detail: `${this.source}: unreachable since ${new Date(this.down.since).toISOString()} (${this.down.why}); Issues are sent without cluster enrichment` };
    return { configured: true, reachable: true, detail: this.source };
  }

  private readonly tracked: KubeReader = new Proxy({} as KubeReader, {
    get: (_t, prop: keyof KubeReader) => {
      const fn = this.client![prop] as ((...args: unknown[]) => Promise<unknown>) | undefined;
      // Only the reader's methods: anything else (`then`, when a promise resolves to the reader) is absent.
      if (typeof fn !== "function") return undefined;
      return async (...args: unknown[]) => {
        try {
          const r = await fn.apply(this.client, args);
          this.markUp();
          return r;
        } catch (e) {
          if (e instanceof KubeError && e.unreachable) this.markDown(e.message);
          else if (e instanceof KubeError) this.markUp();
          throw e;
        }
      };
    },
  });

  private markDown(why: string): void {
    const now = Date.now();
    this.nextProbe = now + this.probeEveryMs;
    if (this.down === undefined) {
      this.down = { since: now, why };
      this.log.warn({ cluster: this.source }, `the Kubernetes API is unreachable (${why}); Issues are sent without cluster enrichment until it is back`);
    }
  }

  private markUp(): void {
    if (this.down !== undefined) {
      this.log.info({ cluster: this.source }, "the Kubernetes API is reachable again: enrichment resumes");
      this.down = undefined;
    }
  }
}
