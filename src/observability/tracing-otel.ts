import { context, diag, DiagLogLevel, propagation, ROOT_CONTEXT, SpanKind as OtelKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanContext } from "@opentelemetry/api";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { LogOnce } from "./log-once.js";
import type { Logger } from "./logger.js";
import type { SpanAttributes, SpanHandle, SpanKind, SpanParent, Tracer } from "./tracing.js";

/**
 * The OpenTelemetry side of the tracing facade, imported only when tracing
 * is on. The SDK reads the standard variables itself: the endpoint and
 * headers (OTEL_EXPORTER_OTLP_*), the sampler (OTEL_TRACES_SAMPLER[_ARG]),
 * batching (OTEL_BSP_*) and resource attributes (OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES). Trace context goes out as W3C traceparent.
 */

const KINDS: Record<SpanKind, OtelKind> = { server: OtelKind.SERVER, client: OtelKind.CLIENT, internal: OtelKind.INTERNAL };

/** Issues whose trace context is kept for their later spans. */
const REMEMBERED = 10_000;

export type OtlpProtocol = "http/protobuf" | "http/json";

/** OTLP over HTTP only: protobuf (the spec's default) or JSON. gRPC is refused with a hint. */
export function protocolOf(env: NodeJS.ProcessEnv): OtlpProtocol {
  const p = (env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] ?? env["OTEL_EXPORTER_OTLP_PROTOCOL"] ?? "http/protobuf").trim();
  if (p === "http/protobuf" || p === "http/json") return p;
  throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${p} is not supported: use http/protobuf (the collector's port 4318) or http/json`);
}

export function createOtelTracer(opts: { env: NodeJS.ProcessEnv; log: Logger; version: string }): Tracer {
  const protocol = protocolOf(opts.env);
  // Export failures (a collector that is down) are worth one line per kind per ten minutes, not one per batch.
  const once = new LogOnce(Date.now);
  diag.setLogger(
    {
      error: (msg: string) => once.log(opts.log, "warn", `otel:${msg.slice(0, 60)}`, {}, `tracing: ${msg}`),
      warn: (msg: string) => once.log(opts.log, "warn", `otel:${msg.slice(0, 60)}`, {}, `tracing: ${msg}`),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "kubecano", "service.version": opts.version }))
    .merge(detectResources({ detectors: [envDetector] }));
  const exporter = protocol === "http/json" ? new OtlpJsonExporter() : new OtlpProtoExporter();
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  // The AsyncLocalStorage context manager and the W3C trace-context propagator.
  provider.register();
  const tracer = trace.getTracer("kubecano", opts.version);
  const remembered = new Map<string, SpanContext>();
  const parentContext = (parent: SpanParent | undefined): Context => {
    if (parent === undefined) return context.active();
    if ("headers" in parent) return propagation.extract(context.active(), parent.headers);
    // Never the ambient context: a worker woken by one webhook request also picks up other Issues' work.
    const sc = remembered.get(parent.key);
    return sc !== undefined ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
  };

  return {
    inSpan(name, kind, attributes, fn, from) {
      const parent = parentContext(from);
      const span = tracer.startSpan(name, { kind: KINDS[kind], attributes: attrs(attributes) }, parent);
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          return await fn(handle(span));
        } catch (e) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
          throw e;
        } finally {
          span.end();
        }
      });
    },
    start(name, attributes) {
      const span = tracer.startSpan(name, { kind: OtelKind.INTERNAL, attributes: attrs(attributes) });
      return { ...handle(span), end: () => span.end() };
    },
    remember(key) {
      const span = trace.getSpan(context.active());
      if (span === undefined) return;
      remembered.set(key, span.spanContext());
      if (remembered.size > REMEMBERED) remembered.delete(remembered.keys().next().value!);
    },
    inject(headers) {
      propagation.inject(context.active(), headers);
    },
    async shutdown() {
      await provider.shutdown();
    },
  };
}

function handle(span: Span): SpanHandle {
  return {
    setAttribute: (k, v) => void span.setAttribute(k, v),
    fail: (message) => void span.setStatus({ code: SpanStatusCode.ERROR, message }),
  };
}

function attrs(a: SpanAttributes): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = v;
  return out;
}
