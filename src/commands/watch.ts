import { existsSync, readFileSync } from "node:fs";
import v8 from "node:v8";
import type { GlobalOptions, Io } from "../cli.js";
import type { Config } from "../config/schema.js";
import { configDirOf, type LoadedConfig } from "../config/load.js";
import { resolveStateDir } from "../config/state-dir.js";
import type { Issue } from "../core/issue.js";
import { DeliveryEngine, PROCESS } from "../delivery/engine.js";
import { SqliteDeliveryStore, StateDirInUseError } from "../delivery/sqlite-store.js";
import { StoreUnavailableError } from "../delivery/store.js";
import { closeDestinations, createDestinations } from "../destinations/index.js";
import { renderConsole } from "../destinations/console/render.js";
import type { Destination } from "../destinations/types.js";
import { ExitCode, InputError, OperationError } from "../errors.js";
import { resolveKubeConfig } from "../kube/config.js";
import type { Logger } from "../observability/logger.js";
import { Metrics } from "../observability/metrics.js";
import { FeedHub } from "../server/feed.js";
import type { InProcessTui } from "../tui/in-process.js";
import type { Pipeline } from "../pipeline.js";
import { KubeApi } from "../sources/kubernetes/api.js";
import type { WatchConfig } from "../sources/kubernetes/config.js";
import { LeaderElector } from "../sources/kubernetes/leader.js";
import { KubernetesSource, type SinkOutcome } from "../sources/kubernetes/source.js";
import { VERSION } from "../version.js";
import { chalkFor, commandContext, describeConfigSource, drainUntilSecondSignal, secondSignal, waitForSignal, withInProcessTui } from "./common.js";
import { createPipeline } from "./setup.js";

/** The flags `watch` and `listen --watch` share. */
export interface WatchFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  /** --namespace NS (repeatable; patterns): replaces watch.namespaces. */
  readonly namespaces?: readonly string[] | undefined;
  /** --all-namespaces: watch every namespace whatever the config says. */
  readonly allNamespaces?: boolean | undefined;
  /** --no-leader-election: false. */
  readonly leaderElection?: boolean | undefined;
}

export interface WatchOptions extends GlobalOptions, WatchFlags {
  /** Deliver through the configured routes and destinations (default: print here). */
  readonly send?: boolean;
  /** Show what each destination would get; send nothing. */
  readonly dryRun?: boolean;
  readonly stateDir?: string;
  readonly ephemeral?: boolean;
  readonly output?: "text" | "json";
  /** --tui: show the Issues in a terminal UI here (logs in its pane; quitting it stops watching). */
  readonly tui?: boolean;
  /** Resolves when to stop; default SIGTERM or SIGINT. Tests pass their own. */
  readonly until?: Promise<unknown>;
}

/** The watch section as the flags change it. */
export function effectiveWatchConfig(base: WatchConfig, flags: WatchFlags, opts: { elect: boolean }): WatchConfig {
  if (flags.allNamespaces === true && (flags.namespaces?.length ?? 0) > 0) throw new InputError("--namespace and --all-namespaces exclude each other");
  const namespaces = flags.allNamespaces === true ? [] : flags.namespaces !== undefined && flags.namespaces.length > 0 ? [...flags.namespaces] : base.namespaces;
  return { ...base, namespaces, leaderElection: { ...base.leaderElection, enabled: opts.elect && flags.leaderElection !== false && base.leaderElection.enabled } };
}

/**
 * For `listen --watch`: the effective watch config, after checking that
 * there is a cluster to watch (before anything is opened or bound).
 */
export async function watchSetup(base: WatchConfig, flags: WatchFlags & { readonly cluster?: boolean | undefined }, env: NodeJS.ProcessEnv): Promise<WatchConfig> {
  if (flags.cluster === false) throw new InputError("--watch and --no-cluster exclude each other", "--watch reads the cluster; drop --no-cluster");
  const config = effectiveWatchConfig(base, flags, { elect: true });
  tuneHeapForWatching(env);
  if ((await resolveKubeConfig({ kubeconfig: flags.kubeconfig, context: flags.context, env })) === undefined) throw noCluster();
  return config;
}

function noCluster(): InputError {
  return new InputError("no Kubernetes cluster to watch: no --kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster service account", "pass --kubeconfig FILE (and --context NAME), or run kubecano inside the cluster");
}

/** Where the Lease lives unless the config says: the pod's namespace in a cluster, else the kubeconfig context's. */
function leaseNamespace(configured: string | undefined, contextNamespace: string | undefined, env: NodeJS.ProcessEnv): string {
  if (configured !== undefined) return configured;
  if ((env["POD_NAMESPACE"] ?? "") !== "") return env["POD_NAMESPACE"]!;
  const sa = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
  if (existsSync(sa)) {
    try {
      const ns = readFileSync(sa, "utf8").trim();
      if (ns !== "") return ns;
    } catch {
      // fall through
    }
  }
  return contextNamespace !== undefined && contextNamespace !== "" ? contextNamespace : "default";
}

/**
 * Resolves the cluster and starts the Kubernetes source (with leader
 * election when the config enables it) feeding `sink`. No cluster is an
 * input error: watching is what was asked for.
 */
export async function startKubernetesSource(deps: { config: WatchConfig; clusterName: string; flags: WatchFlags; log: Logger; metrics?: Metrics | undefined; env: NodeJS.ProcessEnv; sink: (issues: readonly Issue[]) => Promise<SinkOutcome> }): Promise<{ source: KubernetesSource; cluster: string }> {
  const resolved = await resolveKubeConfig({ kubeconfig: deps.flags.kubeconfig, context: deps.flags.context, env: deps.env });
  if (resolved === undefined) throw noCluster();
  const api = new KubeApi(resolved.kc);
  const le = deps.config.leaderElection;
  const leader = le.enabled
    ? new LeaderElector(
        api,
        {
          leaseName: le.leaseName,
          namespace: leaseNamespace(le.namespace, resolved.kc.getContextObject(resolved.context)?.namespace, deps.env),
          leaseDurationMs: le.leaseDuration,
          renewDeadlineMs: le.renewDeadline,
          retryPeriodMs: le.retryPeriod,
        },
        deps.log,
      )
    : undefined;
  const source = new KubernetesSource({ api, config: deps.config, clusterName: deps.clusterName, log: deps.log, metrics: deps.metrics, sink: deps.sink, leader });
  source.start();
  if (leader !== undefined) deps.log.info({ lease: leader.lease, identity: leader.identity }, `leader election on lease ${leader.lease}: one replica watches and sends`);
  return { source, cluster: resolved.source };
}

/**
 * A watching process lives for weeks holding a cluster's state, and on
 * start-up (tens of thousands of objects listed and events read as fast as
 * they come) V8's default heuristics let the heap grow far past what is live:
 * a bare Node client that only parses what kubecano reads peaks at ~120 MB.
 * For the daemon, memory matters more than the last bit of speed: keep the
 * young generation at its initial size and let V8 favour size (its own
 * setting for memory-constrained devices). Measured (bench/watch.mjs): peak
 * RSS ~185 → ~132 MB for 10,000 pods and 50,000 events, at well over the
 * 5,000 events/s needed. Both are heap heuristics V8 reads as it goes;
 * operators who set their own V8 heap flags (NODE_OPTIONS) keep theirs.
 */
export function tuneHeapForWatching(env: NodeJS.ProcessEnv = process.env): void {
  const own = [...process.execArgv, ...(env["NODE_OPTIONS"] ?? "").split(/\s+/)].some((a) => /^--(max|min)-semi-space-size|^--semi-space-growth-factor|^--optimize-for-size|^--max-old-space-size|^--max-heap-size/.test(a));
  if (own) return;
  v8.setFlagsFromString("--semi-space-growth-factor=1");
  v8.setFlagsFromString("--optimize-for-size");
}

/** The pipeline's durable submit as a source sink: refusals (backlog full, store down) are kept and retried by the source. */
export function pipelineSink(pipeline: Pipeline): (issues: readonly Issue[]) => Promise<SinkOutcome> {
  return async (issues) => {
    const r = await pipeline.submit(issues);
    return r.kind === "accepted" ? { kind: "accepted" } : { kind: "unavailable", message: r.message, retryAfterSeconds: r.retryAfterSeconds };
  };
}

type Mode = "print" | "send" | "dry-run";

/**
 * `kubecano watch`: watches the cluster and turns trouble into Issues. By
 * default they are enriched (workflows) and printed here; `--send` delivers
 * them through the configured routes and destinations, durably, with
 * leader election among replicas; `--dry-run` shows what each destination
 * would get. Runs until SIGINT or SIGTERM.
 */
export async function watch(opts: WatchOptions, io: Io): Promise<number> {
  if (opts.tui === true && opts.dryRun === true) throw new InputError("--tui and --dry-run exclude each other", "--tui shows Issues as they are printed or sent; --dry-run prints what each destination would get");
  return withInProcessTui(opts, io, watchWith);
}

async function watchWith(opts: WatchOptions, io: Io, ui: InProcessTui | undefined): Promise<number> {
  if (opts.send === true && opts.dryRun === true) throw new InputError("--send and --dry-run exclude each other", "--dry-run shows what --send would send");
  const mode: Mode = opts.send === true ? "send" : opts.dryRun === true ? "dry-run" : "print";
  tuneHeapForWatching(io.env);
  const { loaded, log } = await commandContext(opts, io);
  const watchConfig = effectiveWatchConfig(loaded.config.watch, opts, { elect: mode === "send" });
  const config: Config =
    mode === "print"
      ? {
          ...loaded.config,
          destinations: [{ name: "terminal", type: "console", params: { format: opts.output === "json" ? "json" : "text", color: "auto", output: "stdout" } }],
          routes: [],
          defaultDestinations: undefined,
        }
      : loaded.config;
  const effective: LoadedConfig = { ...loaded, config };
  // Fail on a missing cluster before opening anything.
  if ((await resolveKubeConfig({ kubeconfig: opts.kubeconfig, context: opts.context, env: io.env })) === undefined) throw noCluster();
  const metrics = new Metrics({ defaultMetrics: false });
  const stop = opts.until ?? waitForSignal();

  if (mode === "dry-run") return dryRun(effective, watchConfig, opts, io, log, metrics, stop);

  const stateDir = mode === "print" && opts.stateDir === undefined ? ":memory:" : opts.ephemeral === true ? ":memory:" : resolveStateDir(opts.stateDir, config.stateDir, io.env);
  let store: SqliteDeliveryStore;
  try {
    store = SqliteDeliveryStore.open({ stateDir, maxBacklog: config.delivery.maxBacklog, dedupWindowMs: config.delivery.dedupWindow, retentionMs: config.delivery.retention, synchronous: config.delivery.durability, log });
  } catch (e) {
    if (e instanceof StateDirInUseError) throw new OperationError(e.message, "stop the other kubecano, or give this one its own --state-dir");
    if (e instanceof StoreUnavailableError) throw new OperationError(e.message, "check the directory's permissions and free space, or use --state-dir DIR (or --ephemeral)");
    throw e;
  }
  let destinations: Destination[] = [];
  let source: KubernetesSource | undefined;
  try {
    const { pipeline } = await createPipeline(effective, { kubeconfig: opts.kubeconfig, context: opts.context }, { log, metrics, env: io.env, state: store });
    destinations = await createDestinations(config.destinations, { log, stdout: io.stdout, stderr: io.stderr, state: store, configDir: configDirOf(loaded) });
    const engine = new DeliveryEngine({
      store,
      destinations,
      config: config.delivery,
      log,
      metrics,
      processor: pipeline,
      processing: { concurrency: config.enrichment.concurrency, timeoutMs: Math.max(30_000, config.enrichment.actionTimeout * 6) },
    });
    pipeline.attach(engine);
    const feed = ui !== undefined ? new FeedHub({ recent: (n) => store.recent(n), depth: () => store.depth(), isProcessing: (i) => store.isPending(PROCESS, i.fingerprint) }) : undefined;
    feed?.attach(engine);
    engine.start();
    const started = await startKubernetesSource({ config: watchConfig, clusterName: config.clusterName, flags: opts, log, metrics, env: io.env, sink: pipelineSink(pipeline) });
    source = started.source;
    log.info(
      {
        version: VERSION,
        cluster: started.cluster,
        config: describeConfigSource(loaded),
        ...(mode === "send" ? { destinations: destinations.map((d) => `${d.name} (${d.type})`).join(", "), stateDir: stateDir === ":memory:" ? "(memory: --ephemeral)" : stateDir } : {}),
      },
      mode === "send" ? `kubecano ${VERSION} watching ${started.cluster}: sending Issues to the configured destinations` : `kubecano ${VERSION} watching ${started.cluster}: Issues are printed here (--send delivers them)`,
    );
    // With --tui, quitting the UI stops watching too; a signal closes the UI first.
    const closed = feed !== undefined ? ui?.run(feed, `watch ${started.cluster}`, stop).catch((e: unknown) => void log.error({ err: e }, `the terminal UI failed: ${String(e)}`)) : undefined;
    const signal = await (closed !== undefined ? Promise.race([stop, closed]) : stop);
    if (closed !== undefined) {
      await closed;
      ui?.release();
    }
    feed?.close();
    // From now on a second signal skips the rest of the grace period.
    const second = secondSignal();
    log.info({ signal: typeof signal === "string" ? signal : undefined }, "stopping: no longer watching, finishing deliveries");
    await source.stop();
    source = undefined;
    const drained = await drainUntilSecondSignal(engine, mode === "print" ? Math.min(config.delivery.shutdownGrace, 10_000) : config.delivery.shutdownGrace, second);
    if (drained.left > 0) log.warn({ left: drained.left }, stateDir === ":memory:" ? `stopped with ${drained.left} deliveries not sent` : `stopped with ${drained.left} deliveries pending; they are sent on the next start`);
  } finally {
    await source?.stop(0);
    await closeDestinations(destinations);
    store.close();
  }
  return ExitCode.OK;
}

async function dryRun(loaded: LoadedConfig, watchConfig: WatchConfig, opts: WatchOptions, io: Io, log: Logger, metrics: Metrics, stop: Promise<unknown>): Promise<number> {
  const config = loaded.config;
  const { pipeline } = await createPipeline(loaded, { kubeconfig: opts.kubeconfig, context: opts.context }, { log, metrics, env: io.env });
  const destinations = await createDestinations(config.destinations, { log, stdout: io.stdout, stderr: io.stderr, configDir: configDirOf(loaded) });
  const byName = new Map(destinations.map((d) => [d.name, d]));
  const c = chalkFor(io.stdout, opts, io.env);
  const color = opts.color && io.stdout.isTTY === true && io.env["NO_COLOR"] === undefined;
  let chain = Promise.resolve();
  // Issues are shown in the order they were found, each once its workflows ran.
  const sink = (issues: readonly Issue[]): Promise<SinkOutcome> => {
    chain = chain.then(async () => {
      for (const raw of issues) {
        const r = await pipeline.runWorkflows(raw);
        const routing = pipeline.routeExplained(r.issue);
        const chosen = (r.silenced !== undefined ? [] : routing.destinations).map((n) => byName.get(n)).filter((d): d is Destination => d !== undefined);
        if (opts.output === "json") {
          io.stdout.write(`${JSON.stringify({ issue: r.issue, ...(r.silenced !== undefined ? { silenced: r.silenced } : {}), routing: routing.why, destinations: chosen.map((d) => ({ name: d.name, type: d.type, payload: d.render(r.issue).body })) })}\n`);
          continue;
        }
        io.stdout.write(renderConsole(r.issue, { color, width: Math.min(160, io.stdout.columns ?? 120) }));
        if (r.silenced !== undefined) io.stdout.write(`${c.yellow("silenced")}: ${r.silenced}; nothing would be sent\n\n`);
        else io.stdout.write(`${c.dim(`dry run: would send to ${chosen.length > 0 ? chosen.map((d) => `${d.name} (${d.type})`).join(", ") : "no destination"}; nothing was sent`)}\n\n`);
      }
    });
    return chain.then(() => ({ kind: "accepted" as const }));
  };
  let source: KubernetesSource | undefined;
  try {
    const started = await startKubernetesSource({ config: watchConfig, clusterName: config.clusterName, flags: opts, log, metrics, env: io.env, sink });
    source = started.source;
    log.info({ version: VERSION, cluster: started.cluster, config: describeConfigSource(loaded) }, `kubecano ${VERSION} watching ${started.cluster} (dry run): showing what each destination would get, sending nothing`);
    await stop;
    await source.stop();
    source = undefined;
    await chain;
  } finally {
    await source?.stop(0);
    await closeDestinations(destinations);
  }
  return ExitCode.OK;
}
