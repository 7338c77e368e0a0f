import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { GlobalOptions, Io } from "../cli.js";
import { resolveStateDir } from "../config/state-dir.js";
import { DeliveryEngine, PROCESS } from "../delivery/engine.js";
import { SqliteDeliveryStore, StateDirInUseError } from "../delivery/sqlite-store.js";
import { StoreUnavailableError } from "../delivery/store.js";
import { configDirOf } from "../config/load.js";
import { closeDestinations, createDestinations } from "../destinations/index.js";
import { ExitCode, InputError, OperationError } from "../errors.js";
import { Metrics } from "../observability/metrics.js";
import { FeedHub } from "../server/feed.js";
import type { InProcessTui } from "../tui/in-process.js";
import { createServer } from "../server/http.js";
import { Recorder } from "../server/record.js";
import { VERSION } from "../version.js";
import { commandContext, describeConfigSource, drainUntilSecondSignal, secondSignal, waitForSignal, withInProcessTui } from "./common.js";
import { createPipeline, type ClusterFlags } from "./setup.js";
import type { KubernetesSource } from "../sources/kubernetes/source.js";
import { pipelineSink, startKubernetesSource, watchSetup, type WatchFlags } from "./watch.js";

export interface ListenOptions extends GlobalOptions, ClusterFlags, WatchFlags {
  readonly host?: string;
  readonly port?: number;
  readonly stateDir?: string;
  /** Keep the queue in memory only: nothing survives a restart. */
  readonly ephemeral?: boolean;
  readonly shutdownGraceMs?: number;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** --record DIR: keep every accepted webhook request for `kubecano replay`. */
  readonly record?: string;
  /** --watch: also watch the cluster (the in-cluster daemon). */
  readonly watch?: boolean;
  /** --tui: live Issues in a terminal UI in this process (logs in its pane; quitting it stops listen). */
  readonly tui?: boolean;
  /** Resolves when the server should stop; default: SIGTERM or SIGINT. Tests pass their own. */
  readonly until?: Promise<unknown>;
  /** Called once listening, with the bound address (tests use port 0). */
  readonly onListening?: (addr: AddressInfo) => void;
}

/**
 * `kubecano listen`: webhook server + durable delivery until a signal.
 * Shutdown order: stop being ready, stop accepting, finish requests, drain
 * deliveries for the grace period, leave the rest in the store, close.
 */
export async function listen(opts: ListenOptions, io: Io): Promise<number> {
  return withInProcessTui(opts, io, listenWith);
}

async function listenWith(opts: ListenOptions, io: Io, ui: InProcessTui | undefined): Promise<number> {
  const { loaded, log } = await commandContext(opts, io);
  const watchConfig = opts.watch === true ? await watchSetup(loaded.config.watch, opts, io.env) : undefined;
  const base = loaded.config;
  const tlsFiles = opts.tlsCert !== undefined || opts.tlsKey !== undefined ? { certFile: opts.tlsCert, keyFile: opts.tlsKey } : base.server.tls;
  const config = {
    ...base,
    server: {
      ...base.server,
      ...(opts.host !== undefined ? { host: opts.host } : {}),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
    },
    delivery: { ...base.delivery, ...(opts.shutdownGraceMs !== undefined ? { shutdownGrace: opts.shutdownGraceMs } : {}) },
  };
  const tls = tlsFiles !== undefined ? await readTls(tlsFiles.certFile, tlsFiles.keyFile) : undefined;
  let recorder: Recorder | undefined;
  if (opts.record !== undefined) {
    try {
      recorder = await Recorder.open(opts.record, log);
    } catch (e) {
      throw new InputError(`cannot record into ${opts.record}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, "give --record a directory kubecano can create and write");
    }
  }

  const stateDir = opts.ephemeral === true ? ":memory:" : resolveStateDir(opts.stateDir, base.stateDir, io.env);
  let store: SqliteDeliveryStore;
  try {
    store = SqliteDeliveryStore.open({
      stateDir,
      maxBacklog: config.delivery.maxBacklog,
      dedupWindowMs: config.delivery.dedupWindow,
      retentionMs: config.delivery.retention,
      synchronous: config.delivery.durability,
      log,
    });
  } catch (e) {
    if (e instanceof StateDirInUseError) throw new OperationError(e.message, "stop the other kubecano, or give this one its own --state-dir");
    if (e instanceof StoreUnavailableError) throw new OperationError(e.message, "check the directory's permissions and free space, or use --state-dir DIR (or --ephemeral to keep the queue in memory)");
    throw e;
  }
  const recovered = store.depth();

  const metrics = new Metrics();
  let pipeline: Awaited<ReturnType<typeof createPipeline>>;
  try {
    pipeline = await createPipeline(loaded, opts, { log, metrics, env: io.env, state: store });
  } catch (e) {
    store.close();
    throw e;
  }
  const destinations = await createDestinations(config.destinations, { log, stdout: io.stdout, stderr: io.stderr, state: store, configDir: configDirOf(loaded) });
  const engine = new DeliveryEngine({
    store,
    destinations,
    config: config.delivery,
    log,
    metrics,
    processor: pipeline.pipeline,
    processing: { concurrency: config.enrichment.concurrency, timeoutMs: Math.max(30_000, config.enrichment.actionTimeout * 6) },
  });
  pipeline.pipeline.attach(engine);
  const feed = new FeedHub({ recent: (n) => store.recent(n), depth: () => store.depth(), isProcessing: (issue) => store.isPending(PROCESS, issue.fingerprint) });
  feed.attach(engine);
  let watching: KubernetesSource | undefined;
  let server: ReturnType<typeof createServer>;
  try {
    server = createServer({
      config: config.server,
      log,
      metrics,
      version: VERSION,
      tls,
      feed,
      ingestAlertmanager:
        recorder === undefined
          ? (body) => pipeline.pipeline.ingestAlertmanager(body)
          : async (body, meta) => {
              const outcome = await pipeline.pipeline.ingestAlertmanager(body);
              if (outcome.kind === "accepted") recorder.record(body, meta);
              return outcome;
            },
      readiness: () => {
        const why = store.unavailableReason();
        // An unreachable cluster costs enrichment, not alerts: reported, but still ready.
        const w = watching?.status();
        return { store: why === undefined ? { ok: true } : { ok: false, detail: why }, cluster: { ok: true, detail: pipeline.cluster.status().detail }, ...(w !== undefined ? { watch: { ok: w.ok, detail: w.detail } } : {}) };
      },
    });
  } catch (e) {
    await closeDestinations(destinations);
    store.close();
    throw listenError(e, config.server.host, config.server.port);
  }

  let addr: AddressInfo;
  try {
    addr = await server.listen();
  } catch (e) {
    await closeDestinations(destinations);
    store.close();
    throw listenError(e, config.server.host, config.server.port);
  }
  engine.start();
  if (watchConfig !== undefined) {
    watching = (await startKubernetesSource({ config: watchConfig, clusterName: config.clusterName, flags: opts, log, metrics, env: io.env, sink: pipelineSink(pipeline.pipeline) })).source;
  }
  // Listening for signals before saying "listening": a supervisor may send SIGTERM as soon as it reads that line.
  const stopRequested = opts.until ?? waitForSignal();
  const scheme = tls !== undefined ? "https" : "http";
  const shown = addr.address === "0.0.0.0" || addr.address === "::" ? "127.0.0.1" : addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  log.info(
    {
      version: VERSION,
      address: `${addr.address}:${addr.port}`,
      config: describeConfigSource(loaded),
      stateDir: stateDir === ":memory:" ? "(memory: --ephemeral)" : stateDir,
      destinations: destinations.map((d) => `${d.name} (${d.type})`).join(", "),
      cluster: pipeline.cluster.status().detail,
      ...(recovered > 0 ? { recoveredDeliveries: recovered } : {}),
    },
    `kubecano ${VERSION} listening: point Alertmanager at ${scheme}://${shown}:${addr.port}/api/alerts`,
  );
  if (recovered > 0) log.info({ pending: recovered }, `resuming ${recovered} deliveries left from the previous run`);
  opts.onListening?.(addr);

  // With --tui, quitting the UI stops kubecano too; a signal closes the UI first.
  const closed = ui?.run(feed, `listen ${scheme}://${shown}:${addr.port}`, stopRequested).catch((e: unknown) => void log.error({ err: e }, `the terminal UI failed: ${String(e)}`));
  const signal = await (closed !== undefined ? Promise.race([stopRequested, closed]) : stopRequested);
  if (closed !== undefined) {
    await closed;
    ui?.release();
  }
  // From now on a second signal skips the rest of the grace period.
  const second = secondSignal();
  log.info({ signal: typeof signal === "string" ? signal : undefined }, "shutting down: no longer accepting webhooks, draining deliveries");
  server.markNotReady();
  await server.close(5_000);
  await watching?.stop();
  const drained = await drainUntilSecondSignal(engine, config.delivery.shutdownGrace, second);
  if (drained.left > 0) {
    if (stateDir === ":memory:") log.warn({ left: drained.left }, `stopped with ${drained.left} deliveries not sent; --ephemeral does not keep them`);
    else log.info({ left: drained.left, stateDir }, `stopped with ${drained.left} deliveries pending; they are kept in the state directory and sent on the next start`);
  } else {
    log.info("all deliveries finished");
  }
  feed.close();
  await closeDestinations(destinations);
  store.close();
  return ExitCode.OK;
}

async function readTls(certFile: string | undefined, keyFile: string | undefined): Promise<{ cert: Buffer; key: Buffer }> {
  if (certFile === undefined || keyFile === undefined) throw new InputError("TLS needs both a certificate and a key", "pass --tls-cert FILE and --tls-key FILE (or server.tls.certFile and keyFile)");
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (e) {
      throw new InputError(`cannot read the TLS ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  return { cert: await read(certFile, "certificate"), key: await read(keyFile, "key") };
}

function listenError(e: unknown, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") return new OperationError(`cannot listen on ${host}:${port}: the port is in use`, "stop the other process or choose another port with --port");
  if (code === "EACCES") return new OperationError(`cannot listen on ${host}:${port}: permission denied`, "ports below 1024 need privileges: use --port 8080");
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") return new OperationError(`cannot listen on ${host}: no such local address`, "use --host 0.0.0.0 or 127.0.0.1");
  // Any OpenSSL error here comes from the certificate or key (e.g. ERR_OSSL_UNSUPPORTED for a file that is no key at all).
  if (code === "ERR_SSL_NO_START_LINE" || (typeof code === "string" && code.startsWith("ERR_OSSL")) || /PEM|certificate|key/i.test(String((e as Error).message))) return new InputError(`cannot serve TLS: ${(e as Error).message}`, "check that --tls-cert and --tls-key are PEM files that belong together");
  return e;
}
