/**
 * Tracing through the built CLI: `kubecano listen` with
 * OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP receiver sends a
 * server span per webhook request (continuing the sender's traceparent), a
 * span per workflow action and per delivery attempt, and the delivery's
 * trace context reaches the destination as a traceparent header. Without the
 * variable, no OpenTelemetry module is even loaded.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startKubeFake } from "../fakes/kube.js";
import { startWebhookFake, type WebhookFake } from "../fakes/webhook.js";
import { eventually, postAlerts, startListen, stopAllChildren, tempDirWith } from "../helpers/cli.js";

interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes?: readonly { key: string; value: { stringValue?: string; intValue?: string | number; boolValue?: boolean } }[];
  readonly status?: { code?: number; message?: string };
}

interface Receiver {
  readonly url: string;
  readonly requests: { path: string; contentType: string; body: Buffer }[];
  /** Spans of every JSON export so far. */
  spans(): OtlpSpan[];
  /** service.name of the JSON exports. */
  serviceNames(): string[];
  close(): Promise<void>;
}

/** An OTLP/HTTP trace receiver on 127.0.0.1: records every export and answers 200 as a collector does. */
async function startOtlpReceiver(): Promise<Receiver> {
  const requests: Receiver["requests"] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ path: req.url ?? "", contentType: req.headers["content-type"] ?? "", body: Buffer.concat(chunks) });
      const json = (req.headers["content-type"] ?? "").includes("json");
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const jsonExports = (): { resourceSpans?: { resource?: { attributes?: OtlpSpan["attributes"] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[] }[] =>
    requests.filter((r) => r.contentType.includes("json")).map((r) => JSON.parse(r.body.toString("utf8")) as never);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    spans: () => jsonExports().flatMap((e) => (e.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? []))),
    serviceNames: () => jsonExports().flatMap((e) => (e.resourceSpans ?? []).map((rs) => rs.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "")),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function attr(span: OtlpSpan, key: string): string | number | boolean | undefined {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  if (v === undefined) return undefined;
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.boolValue);
}

const SERVER = 2;
const CLIENT = 3;
const STATUS_ERROR = 2;

/** Two alerts: a crash loop (its workflows read the cluster: enriched in the background) and one only the alert-reading workflow matches. */
function webhookBody(): unknown {
  const alert = (name: string, fingerprint: string) => ({
    status: "firing",
    labels: { alertname: name, namespace: "shop", pod: "api-7d9f", severity: "warning" },
    annotations: { summary: `${name} summary`, team_note: "look at the api" },
    startsAt: "2026-11-26T10:38:06Z",
    endsAt: "0001-01-01T00:00:00Z",
    generatorURL: "",
    fingerprint,
  });
  return {
    version: "4",
    groupKey: "{}:{alertname=\"x\"}",
    truncatedAlerts: 0,
    status: "firing",
    receiver: "kubecano",
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: "http://alertmanager:9093",
    alerts: [alert("KubePodCrashLooping", "1111111111111111"), alert("HighErrorRate", "2222222222222222")],
  };
}

function configFor(hook: WebhookFake): string {
  return `clusterName: traced
destinations:
  - name: hook
    type: webhook
    params:
      url: ${hook.url}
`;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await stopAllChildren();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe("tracing (OTLP over HTTP)", () => {
  it("exports a webhook span continuing the sender's trace, with the Issues' action and delivery spans under it, and the delivery's context reaches the destination", async () => {
    const otlp = await startOtlpReceiver();
    const hook = await startWebhookFake();
    // A cluster, so the crash loop's workflows read it: that Issue is enriched in the background.
    const kube = await startKubeFake();
    cleanups.push(() => otlp.close(), () => hook.close(), () => kube.close());
    const dir = await tempDirWith({ "kubecano.config.yaml": configFor(hook) });
    const l = await startListen(["--ephemeral", "--kubeconfig", kube.kubeconfigPath()], {
      cwd: dir,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_SERVICE_NAME: "kubecano-e2e" },
    });
    expect(l.logs().some((x) => x.msg === "tracing: sending spans over OTLP")).toBe(true);

    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpan = "00f067aa0ba902b7";
    const reply = await postAlerts(l.url, webhookBody(), { traceparent: `00-${traceId}-${callerSpan}-01` });
    expect(reply.status).toBe(202);
    await hook.waitFor(() => hook.accepted() === 2, 20_000);

    const spans = await eventually(
      () => {
        const s = otlp.spans();
        return s.filter((x) => x.name === "delivery hook").length === 2 && s.some((x) => x.name === "workflows") ? s : undefined;
      },
      "the delivery spans to be exported",
      20_000,
    );
    expect(otlp.requests.every((r) => r.path === "/v1/traces")).toBe(true);
    expect(new Set(otlp.serviceNames())).toEqual(new Set(["kubecano-e2e"]));
    // Everything about these two alerts is one trace: the sender's.
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([traceId]));

    // The webhook request: a server span, child of the sender's span.
    const webhook = spans.filter((s) => s.name === "webhook POST /api/alerts");
    expect(webhook).toHaveLength(1);
    expect(webhook[0]!.kind).toBe(SERVER);
    expect(webhook[0]!.parentSpanId).toBe(callerSpan);
    expect(attr(webhook[0]!, "http.response.status_code")).toBe(202);
    const webhookSpan = webhook[0]!.spanId;

    // HighErrorRate only matches a workflow that reads the alert: its action runs while the webhook waits, inside its span.
    const inline = spans.filter((s) => s.name.startsWith("workflow.action ") && s.parentSpanId === webhookSpan);
    expect(inline.map((s) => s.name)).toEqual(["workflow.action annotations_table"]);
    expect(attr(inline[0]!, "kubecano.workflow")).toBe("alert-annotations");

    // The crash loop is enriched in the background, under a "workflows" span that continues the webhook's trace.
    const background = spans.filter((s) => s.name === "workflows");
    expect(background).toHaveLength(1);
    expect(background[0]!.parentSpanId).toBe(webhookSpan);
    const bgActions = spans.filter((s) => s.parentSpanId === background[0]!.spanId);
    expect(bgActions.map((s) => s.name).sort()).toEqual(["workflow.action annotations_table", "workflow.action pod_events", "workflow.action pod_logs", "workflow.action pod_status"]);
    // The fake cluster has no such pod: the action that reads it failed, and its span says so.
    const podStatus = bgActions.find((s) => s.name === "workflow.action pod_status")!;
    expect(podStatus.status?.code).toBe(STATUS_ERROR);
    expect(podStatus.status?.message).toBe("pod shop/api-7d9f no longer exists");

    // One delivery span per attempt, under the webhook span; each request to the destination carried that span's context.
    const deliveries = spans.filter((s) => s.name === "delivery hook");
    for (const d of deliveries) {
      expect(d.kind).toBe(CLIENT);
      expect(d.parentSpanId).toBe(webhookSpan);
      expect(attr(d, "kubecano.destination")).toBe("hook");
      expect(attr(d, "kubecano.destination.type")).toBe("webhook");
      expect(attr(d, "kubecano.delivery.outcome")).toBe("success");
      expect(attr(d, "kubecano.delivery.attempt")).toBe(1);
    }
    const sent = hook.calls.map((c) => String(c.headers["traceparent"]));
    expect(sent).toHaveLength(2);
    expect(new Set(sent.map((tp) => tp.split("-")[2]))).toEqual(new Set(deliveries.map((d) => d.spanId)));
    for (const tp of sent) expect(tp.split("-")[1]).toBe(traceId);
  });

  it("marks a failed attempt's span as an error with the destination's message, and the retry is a span of its own", async () => {
    const otlp = await startOtlpReceiver();
    const hook = await startWebhookFake();
    cleanups.push(() => otlp.close(), () => hook.close());
    hook.failNext(503, { retryAfterSeconds: 1 });
    const dir = await tempDirWith({ "kubecano.config.yaml": configFor(hook) });
    const l = await startListen(["--ephemeral", "--no-cluster"], {
      cwd: dir,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "100" },
    });
    const body = webhookBody() as { alerts: unknown[] };
    expect((await postAlerts(l.url, { ...body, alerts: body.alerts.slice(1) })).status).toBe(202);
    await hook.waitFor(() => hook.accepted() === 1, 20_000);
    const spans = await eventually(() => {
      const d = otlp.spans().filter((x) => x.name === "delivery hook");
      return d.length === 2 ? d : undefined;
    }, "two delivery spans");
    const [first, second] = [...spans].sort((a, b) => Number(attr(a, "kubecano.delivery.attempt")) - Number(attr(b, "kubecano.delivery.attempt")));
    expect(attr(first!, "kubecano.delivery.outcome")).toBe("retry");
    expect(attr(first!, "error.type")).toBe("http_503");
    expect(first!.status?.code).toBe(STATUS_ERROR);
    expect(first!.status?.message).toContain("HTTP 503");
    expect(attr(second!, "kubecano.delivery.outcome")).toBe("success");
    expect(attr(second!, "kubecano.delivery.attempt")).toBe(2);
    // Without the caller's traceparent, the webhook span starts a trace of its own.
    const webhook = otlp.spans().find((s) => s.name === "webhook POST /api/alerts");
    expect(webhook?.parentSpanId ?? "").toBe("");
    expect(l.logs().filter((x) => x.level === "warn" && String(x.msg).startsWith("tracing"))).toEqual([]);
  });

  it("the Slack client's Web API requests carry the delivery attempt's trace context", async () => {
    const otlp = await startOtlpReceiver();
    // Just enough of the Slack Web API: every method answers ok with a message ts; the headers are what this test is about.
    const seen: { method: string; traceparent: string | undefined }[] = [];
    const slack = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        seen.push({ method: (req.url ?? "").split("/").pop() ?? "", traceparent: req.headers["traceparent"] as string | undefined });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: true, channel: "C0123456789", ts: "1700000000.000100", messages: [] }));
      });
    });
    await new Promise<void>((resolve) => slack.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => otlp.close(), () => new Promise<void>((resolve) => slack.close(() => resolve())));
    const dir = await tempDirWith({
      "kubecano.config.yaml": `destinations:
  - name: slack-main
    type: slack
    params:
      token: xoxb-test-token
      channel: C0123456789
      api_url: http://127.0.0.1:${(slack.address() as AddressInfo).port}/api/
`,
    });
    const l = await startListen(["--ephemeral", "--no-cluster"], { cwd: dir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "100" } });
    const body = webhookBody() as { alerts: unknown[] };
    expect((await postAlerts(l.url, { ...body, alerts: body.alerts.slice(1) })).status).toBe(202);
    const spans = await eventually(() => {
      const d = otlp.spans().filter((x) => x.name === "delivery slack-main");
      return d.length === 1 ? d : undefined;
    }, "the Slack delivery span");
    expect(attr(spans[0]!, "kubecano.delivery.outcome")).toBe("success");
    const posts = seen.filter((s) => s.method === "chat.postMessage");
    expect(posts).toHaveLength(1);
    const [, tid, parent] = (posts[0]!.traceparent ?? "").split("-");
    expect(tid).toBe(spans[0]!.traceId);
    expect(parent).toBe(spans[0]!.spanId);
  });

  it("speaks OTLP/protobuf by default, and flushes buffered spans on shutdown", async () => {
    const otlp = await startOtlpReceiver();
    const hook = await startWebhookFake();
    cleanups.push(() => otlp.close(), () => hook.close());
    const dir = await tempDirWith({ "kubecano.config.yaml": configFor(hook) });
    // A long batch delay: only the shutdown flush can export these spans in time.
    const l = await startListen(["--ephemeral", "--no-cluster"], { cwd: dir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${otlp.url}/`, OTEL_BSP_SCHEDULE_DELAY: "600000" } });
    const body = webhookBody() as { alerts: unknown[] };
    expect((await postAlerts(l.url, { ...body, alerts: body.alerts.slice(1) })).status).toBe(202);
    await hook.waitFor(() => hook.accepted() === 1, 20_000);
    expect(otlp.requests).toHaveLength(0);
    expect(await l.stop()).toBe(0);
    expect(otlp.requests.length).toBeGreaterThan(0);
    for (const r of otlp.requests) {
      expect(r.path).toBe("/v1/traces");
      expect(r.contentType).toBe("application/x-protobuf");
    }
    // Span names are plain UTF-8 strings inside the protobuf message.
    const all = Buffer.concat(otlp.requests.map((r) => r.body)).toString("latin1");
    for (const name of ["webhook POST /api/alerts", "workflow.action annotations_table", "delivery hook", "kubecano"]) expect(all).toContain(name);
  });

  it("an unsupported protocol is one warning and kubecano serves without traces", async () => {
    const hook = await startWebhookFake();
    cleanups.push(() => hook.close());
    const dir = await tempDirWith({ "kubecano.config.yaml": configFor(hook) });
    const l = await startListen(["--ephemeral", "--no-cluster"], { cwd: dir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" } });
    const warn = l.logs().find((x) => x.level === "warn" && String(x.msg).startsWith("tracing is off"));
    expect(warn?.msg).toContain("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported");
    const body = webhookBody() as { alerts: unknown[] };
    expect((await postAlerts(l.url, { ...body, alerts: body.alerts.slice(1) })).status).toBe(202);
    await hook.waitFor(() => hook.accepted() === 1, 20_000);
    expect(hook.calls[0]!.headers["traceparent"]).toBeUndefined();
  });
});

describe("tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT)", () => {
  let hookDir: string;
  beforeAll(async () => {
    hookDir = await mkdtemp(path.join(os.tmpdir(), "kubecano-trace-hook-"));
    // A module resolve hook that notes every specifier the process asks for.
    await writeFile(
      path.join(hookDir, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";
let log;
export async function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) { appendFileSync(log, specifier + "\\n"); return next(specifier, context); }
`,
    );
    await writeFile(
      path.join(hookDir, "register.mjs"),
      `import { register } from "node:module";
register(${JSON.stringify(pathToFileURL(path.join(hookDir, "hooks.mjs")).href)}, { data: { log: process.env.RESOLVE_LOG } });
`,
    );
  });
  afterAll(async () => {
    await rm(hookDir, { recursive: true, force: true });
  });

  for (const on of [false, true]) {
    it(on ? "with the variable set, the SDK is loaded (the check below can see it)" : "loads no OpenTelemetry module and sends no traceparent", async () => {
      const hook = await startWebhookFake();
      cleanups.push(() => hook.close());
      const dir = await tempDirWith({ "kubecano.config.yaml": configFor(hook) });
      const resolveLog = path.join(dir, "resolved.txt");
      await writeFile(resolveLog, "");
      const l = await startListen(["--ephemeral", "--no-cluster"], {
        cwd: dir,
        env: {
          NODE_OPTIONS: `--import=${pathToFileURL(path.join(hookDir, "register.mjs")).href}`,
          RESOLVE_LOG: resolveLog,
          OTEL_EXPORTER_OTLP_ENDPOINT: on ? "http://127.0.0.1:1" : undefined,
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined,
        },
      });
      const body = webhookBody() as { alerts: unknown[] };
      expect((await postAlerts(l.url, { ...body, alerts: body.alerts.slice(1) })).status).toBe(202);
      await hook.waitFor(() => hook.accepted() === 1, 20_000);
      const resolved = (await readFile(resolveLog, "utf8")).split("\n");
      // The hook saw kubecano's own modules: it works.
      expect(resolved.some((s) => s.endsWith("/delivery/engine.js"))).toBe(true);
      expect(resolved.some((s) => s.startsWith("@opentelemetry/"))).toBe(on);
      expect(hook.calls[0]!.headers["traceparent"] !== undefined).toBe(on);
    });
  }
});
