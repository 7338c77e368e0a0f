import type { AddressInfo } from "node:net";
import type { GlobalOptions, Io } from "../cli.js";
import { DeliveryEngine } from "../delivery/engine.js";
import { MemoryDeliveryStore } from "../delivery/memory-store.js";
import { closeDestinations, createDestinations } from "../destinations/index.js";
import { ExitCode, OperationError } from "../errors.js";
import { Metrics } from "../observability/metrics.js";
import { Pipeline } from "../pipeline.js";
import { createServer } from "../server/http.js";
import { VERSION } from "../version.js";
import { commandContext, describeConfigSource } from "./common.js";

export interface ListenOptions extends GlobalOptions {
  readonly host?: string;
  readonly port?: number;
  /** Resolves when the server should stop; default: SIGTERM or SIGINT. Tests pass their own. */
  readonly until?: Promise<unknown>;
  /** Called once listening, with the bound address (tests use port 0). */
  readonly onListening?: (addr: AddressInfo) => void;
}

/**
 * `kubecano listen`: webhook server + delivery engine until a signal.
 * Shutdown order: stop being ready, stop accepting, finish requests, drain
 * deliveries for the grace period, close destinations.
 */
export async function listen(opts: ListenOptions, io: Io): Promise<number> {
  const { loaded, log } = await commandContext(opts, io);
  const config = {
    ...loaded.config,
    server: {
      ...loaded.config.server,
      ...(opts.host !== undefined ? { host: opts.host } : {}),
      ...(opts.port !== undefined ? { port: opts.port } : {}),
    },
  };
  const metrics = new Metrics();
  const destinations = await createDestinations(config.destinations, { log, stdout: io.stdout, stderr: io.stderr });
  const store = new MemoryDeliveryStore({ maxBacklog: config.delivery.maxBacklog });
  const engine = new DeliveryEngine({ store, destinations, config: config.delivery, log, metrics });
  const pipeline = new Pipeline({ config, engine, log, metrics });
  const server = createServer({
    config: config.server,
    log,
    metrics,
    version: VERSION,
    ingestAlertmanager: (body) => pipeline.ingestAlertmanager(body),
  });

  let addr: AddressInfo;
  try {
    addr = await server.listen();
  } catch (e) {
    await closeDestinations(destinations);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new OperationError(`cannot listen on ${config.server.host}:${config.server.port}: the port is in use`, "stop the other process or choose another port with --port");
    if (code === "EACCES") throw new OperationError(`cannot listen on ${config.server.host}:${config.server.port}: permission denied`, "ports below 1024 need privileges: use --port 8080");
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw new OperationError(`cannot listen on ${config.server.host}: no such local address`, "use --host 0.0.0.0 or 127.0.0.1");
    throw e;
  }
  engine.start();
  const shown = addr.address === "0.0.0.0" || addr.address === "::" ? "127.0.0.1" : addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  log.info(
    { version: VERSION, address: `${addr.address}:${addr.port}`, config: describeConfigSource(loaded), destinations: destinations.map((d) => `${d.name} (${d.type})`).join(", ") },
    `kubecano ${VERSION} listening: point Alertmanager at http://${shown}:${addr.port}/api/alerts`,
  );
  opts.onListening?.(addr);

  const signal = await (opts.until ?? waitForSignal());
  log.info({ signal: typeof signal === "string" ? signal : undefined }, "shutting down: no longer accepting webhooks, draining deliveries");
  server.markNotReady();
  await server.close(5_000);
  const forced = new Promise<void>((resolve) => {
    const again = (): void => resolve();
    process.once("SIGINT", again);
    process.once("SIGTERM", again);
  });
  const drained = await Promise.race([engine.drain(config.delivery.shutdownGrace), forced.then(() => {
    engine.stop();
    return { left: engine.backlog() };
  })]);
  if (drained.left > 0) {
    log.warn({ left: drained.left }, `stopped with ${drained.left} deliveries not sent: the in-memory queue does not keep them`);
  } else {
    log.info("all deliveries finished");
  }
  await closeDestinations(destinations);
  return ExitCode.OK;
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(s);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}
