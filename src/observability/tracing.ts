import type { Logger } from "./logger.js";

/**
 * Tracing facade. Off by default, and then it costs a function call that
 * returns undefined: the OpenTelemetry SDK is imported only by
 * startTracing(), and only when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set. Hot paths ask `tracer()` once
 * and take their untraced branch when it answers undefined.
 */

export type SpanKind = "server" | "client" | "internal";
export type SpanAttributes = Readonly<Record<string, string | number | boolean | undefined>>;
export type SpanParent = { readonly headers: Readonly<Record<string, string | string[] | undefined>> } | { readonly key: string };

export interface SpanHandle {
  setAttribute(key: string, value: string | number | boolean): void;
  /** Marks the span failed with a one-line reason (no stack: messages may be long, stacks are noise here). */
  fail(message: string): void;
}

export interface Tracer {
  /**
   * Runs `fn` in a new span that is the active one while it runs, so spans
   * started and requests sent inside are its children. The span ends when
   * `fn` settles; a rejection marks it failed. Its parent is the active span,
   * or per `parent`: incoming request `headers` (continuing the sender's
   * trace), or what was remembered under `key` (else it starts a trace).
   */
  inSpan<T>(name: string, kind: SpanKind, attributes: SpanAttributes, fn: (span: SpanHandle) => Promise<T>, parent?: SpanParent): Promise<T>;
  /**
   * Notes the active span under `key` (an Issue id), so the Issue's later
   * work (background enrichment, every delivery attempt) continues the trace
   * of the request that brought it, whoever wakes the worker. In memory and
   * bounded: after a restart or 10,000 newer keys, that work starts a trace.
   */
  remember(key: string): void;
  /** A span under the active one, not made active: for work that ends synchronously or is timed by the caller. */
  start(name: string, attributes: SpanAttributes): SpanHandle & { end(): void };
  /** Adds the active span's `traceparent` (and `tracestate`) to `headers`. */
  inject(headers: Record<string, string>): void;
  /** Exports what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

let current: Tracer | undefined;
let starting: Promise<Tracer | undefined> | undefined;

/** The tracer when tracing is on, else undefined. */
export function tracer(): Tracer | undefined {
  return current;
}

/** The OTLP endpoint that turns tracing on, or undefined. */
export function tracingEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  const v = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  return v !== undefined && v.trim() !== "" && env["OTEL_SDK_DISABLED"] !== "true" && env["OTEL_TRACES_EXPORTER"] !== "none" ? v.trim() : undefined;
}

/**
 * Starts tracing when the environment asks for it; idempotent. Never
 * throws: a broken setup (an unsupported protocol, a missing package) is one
 * warning and kubecano runs without traces.
 */
export function startTracing(opts: { env: NodeJS.ProcessEnv; log: Logger; version: string }): Promise<Tracer | undefined> {
  if (tracingEndpoint(opts.env) === undefined) return Promise.resolve(undefined);
  starting ??= import("./tracing-otel.js").then(
    (m) => {
      try {
        current = m.createOtelTracer(opts);
        opts.log.info({ endpoint: tracingEndpoint(opts.env), protocol: m.protocolOf(opts.env) }, "tracing: sending spans over OTLP");
      } catch (e) {
        opts.log.warn({ err: e }, `tracing is off: ${e instanceof Error ? e.message : String(e)}`);
      }
      return current;
    },
    (e: unknown) => {
      opts.log.warn({ err: e }, `tracing is off: cannot load OpenTelemetry (${e instanceof Error ? e.message : String(e)})`);
      return undefined;
    },
  );
  return starting;
}

/** Flushes and stops tracing (a no-op when it is off); bounded, so exiting never hangs on a dead collector. */
export async function stopTracing(timeoutMs = 5_000): Promise<void> {
  const t = current;
  current = undefined;
  starting = undefined;
  if (t === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([t.shutdown().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
}

/**
 * A fetch that sends the active trace context with each request, for
 * clients that take a fetch function (the Slack SDK); undefined when tracing
 * is off, so callers keep their default.
 */
export function tracedFetch(): ((url: string | URL, init?: RequestInit & { headers?: Record<string, string> }) => Promise<Response>) | undefined {
  const t = current;
  if (t === undefined) return undefined;
  return (url, init) => {
    const headers: Record<string, string> = { ...init?.headers };
    t.inject(headers);
    return fetch(url, { ...init, headers });
  };
}
