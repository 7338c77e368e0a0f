/**
 * A local fake of the PagerDuty Events API v2, on node:http (127.0.0.1, an
 * ephemeral port). Point kubecano's pagerduty destination at it with
 * `api_url: fake.url`.
 *
 * It speaks the protocol as documented (developer.pagerduty.com, "Send an
 * Alert Event", "Events API v2 Overview"): `POST /v2/enqueue` with a JSON
 * event; 202 `{status:"success", message:"Event processed", dedup_key}` when
 * accepted; 400 `{status:"invalid event", message:"Event object is invalid",
 * errors:[...]}` for an event PagerDuty would refuse (bad or unknown routing
 * key, missing summary/source/severity, fields over their limits, a body over
 * 512 KB); 429 when throttled. It keeps alerts the way PagerDuty does: a
 * trigger for an open dedup_key adds to that alert, a resolve closes it, a
 * trigger after that opens a new one, and events only touch alerts opened
 * through the same routing key.
 *
 * Everything is recorded (`events`), alerts can be read back, and faults can
 * be injected: an HTTP status (with Retry-After), a request never answered,
 * a connection cut after the request arrived.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** The routing key every fake accepts unless `routingKeys` says otherwise. */
export const PD_FAKE_ROUTING_KEY = "R0FAKEPAGERDUTYKEY00000000000001";

/** "Events API payloads are limited to 512 KB." */
export const PD_MAX_EVENT_BYTES = 512 * 1024;

const SEVERITIES = ["critical", "error", "warning", "info"];
const ACTIONS = ["trigger", "acknowledge", "resolve"];

export interface PagerDutyFakeOptions {
  /** Integration keys that exist. Default: PD_FAKE_ROUTING_KEY. */
  readonly routingKeys?: readonly string[];
  /**
   * Error texts quote the routing key, as a careless remote might: for tests
   * proving kubecano scrubs remote text before it shows or logs it.
   */
  readonly echoRoutingKey?: boolean;
}

export type EventOutcome = "pending" | "accepted" | "invalid" | "fault" | "hung" | "cut";
export type HistoryEntry = "open" | "update" | "resolve";

/** One HTTP request the fake received. Mutated in place as it is answered. */
export interface PagerDutyEventRecord {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  /** The parsed JSON body (undefined when it was not JSON). */
  readonly body: Record<string, unknown> | undefined;
  readonly bytes: number;
  readonly routing_key: string | undefined;
  readonly event_action: string | undefined;
  /** The dedup_key sent, or the one the fake generated for a trigger without one. */
  dedup_key: string | undefined;
  status: number | undefined;
  outcome: EventOutcome;
  response: unknown;
}

export interface PagerDutyAlert {
  readonly routing_key: string;
  readonly dedup_key: string;
  status: "triggered" | "acknowledged" | "resolved";
  /** Trigger events applied to this alert (the first one included). */
  triggers: number;
  /** The last trigger's payload. */
  payload: Record<string, unknown>;
  links: unknown[];
}

export interface FailOptions {
  readonly retryAfterSeconds?: number;
  readonly count?: number;
  /** The answer's JSON body, instead of PagerDuty's usual one for the status. */
  readonly body?: unknown;
}

export interface PagerDutyFake {
  /** http://127.0.0.1:PORT — the destination's api_url. */
  readonly url: string;
  /** Every request, in arrival order. */
  readonly events: readonly PagerDutyEventRecord[];
  /** Alerts by dedup_key, newest last (a re-triggered dedup_key after a resolve is a new alert). */
  alerts(dedupKey?: string): readonly PagerDutyAlert[];
  /** What happened to a dedup_key, in order: "open", "update" (a repeat trigger or an acknowledge), "resolve". */
  received(dedupKey: string): readonly HistoryEntry[];
  /** Requests answered 2xx so far. */
  accepted(): number;
  /** The next `count` (default 1) requests get this status, with PagerDuty's body for it. */
  failNext(status: number, opts?: FailOptions): void;
  /** The next request is read and never answered (until close). */
  hangNext(): void;
  /** The next request is read, then its connection is destroyed without an answer. */
  cutNext(): void;
  addRoutingKey(key: string): void;
  /** Forgets events, alerts and pending faults. */
  reset(): void;
  close(): Promise<void>;
}

type Fault = { kind: "status"; status: number; retryAfterSeconds?: number | undefined; body?: unknown } | { kind: "hang" } | { kind: "cut" };

export async function startPagerDutyFake(opts: PagerDutyFakeOptions = {}): Promise<PagerDutyFake> {
  const keys = new Set(opts.routingKeys ?? [PD_FAKE_ROUTING_KEY]);
  const events: PagerDutyEventRecord[] = [];
  let alerts: PagerDutyAlert[] = [];
  const history = new Map<string, HistoryEntry[]>();
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();
  let seq = 0;

  const note = (dedupKey: string, h: HistoryEntry): void => {
    const list = history.get(dedupKey) ?? [];
    list.push(h);
    history.set(dedupKey, list);
  };
  const openAlert = (routingKey: string, dedupKey: string): PagerDutyAlert | undefined =>
    alerts.find((a) => a.routing_key === routingKey && a.dedup_key === dedupKey && a.status !== "resolved");

  const send = (rec: PagerDutyEventRecord, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    rec.status = status;
    rec.response = body;
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const invalid = (rec: PagerDutyEventRecord, res: ServerResponse, errors: string[]): void => {
    rec.outcome = "invalid";
    send(rec, res, 400, { status: "invalid event", message: "Event object is invalid", errors });
  };

  /** PagerDuty's checks on an event, in its words; empty when the event is valid. */
  const validate = (ev: Record<string, unknown>): string[] => {
    const errors: string[] = [];
    const quote = (k: string): string => (opts.echoRoutingKey === true ? ` (${k})` : "");
    const rk = ev["routing_key"];
    if (typeof rk !== "string" || rk === "") errors.push("'routing_key' is missing or blank");
    else if (rk.length !== 32) errors.push(`Length of 'routing_key' is incorrect (should be 32 characters)${quote(rk)}`);
    else if (!/^[A-Za-z0-9]+$/.test(rk)) errors.push(`'routing_key' cannot contain non-alphanumeric characters.${quote(rk)}`);
    else if (!keys.has(rk)) errors.push(`Invalid routing key${quote(rk)}`);
    const action = ev["event_action"];
    if (typeof action !== "string" || action === "") errors.push("'event_action' is missing or blank");
    else if (!ACTIONS.includes(action)) errors.push("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)");
    const dk = ev["dedup_key"];
    if (dk !== undefined && typeof dk !== "string") errors.push("'dedup_key' must be a string");
    if (typeof dk === "string" && dk.length > 255) errors.push("Length of 'dedup_key' is too long (must be at most 255 characters)");
    if ((action === "resolve" || action === "acknowledge") && (typeof dk !== "string" || dk === "")) errors.push("'dedup_key' is missing or blank");
    if (action === "trigger") {
      const p = ev["payload"];
      if (p === null || typeof p !== "object" || Array.isArray(p)) {
        errors.push("'payload' is missing or blank");
      } else {
        const payload = p as Record<string, unknown>;
        const summary = payload["summary"];
        if (typeof summary !== "string" || summary.trim() === "") errors.push("'payload.summary' is missing or blank");
        else if (summary.length > 1024) errors.push("Length of 'payload.summary' is too long (must be at most 1024 characters)");
        const source = payload["source"];
        if (typeof source !== "string" || source.trim() === "") errors.push("'payload.source' is missing or blank");
        const severity = payload["severity"];
        if (typeof severity !== "string" || severity === "") errors.push("'payload.severity' is missing or blank");
        else if (!SEVERITIES.includes(severity)) errors.push("'payload.severity' is invalid (must be one of: critical, error, warning, info)");
        const ts = payload["timestamp"];
        if (ts !== undefined && (typeof ts !== "string" || !Number.isFinite(Date.parse(ts)))) errors.push("'payload.timestamp' is invalid (must be an ISO 8601 timestamp)");
        for (const k of ["component", "group", "class"]) if (payload[k] !== undefined && typeof payload[k] !== "string") errors.push(`'payload.${k}' must be a string`);
        const cd = payload["custom_details"];
        if (cd !== undefined && (cd === null || typeof cd !== "object")) errors.push("'payload.custom_details' must be an object");
      }
      const links = ev["links"];
      if (links !== undefined) {
        if (!Array.isArray(links)) errors.push("'links' must be an array");
        else links.forEach((l, i) => {
          if (l === null || typeof l !== "object" || typeof (l as { href?: unknown }).href !== "string" || (l as { href: string }).href === "") errors.push(`'links[${i}].href' is missing or blank`);
        });
      }
      const images = ev["images"];
      if (images !== undefined) {
        if (!Array.isArray(images)) errors.push("'images' must be an array");
        else images.forEach((im, i) => {
          const src = (im as { src?: unknown } | null)?.src;
          if (typeof src !== "string" || !src.startsWith("https://")) errors.push(`'images[${i}].src' must be an HTTPS URL`);
        });
      }
    }
    return errors;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: Buffer): void => {
    let body: Record<string, unknown> | undefined;
    try {
      const parsed = JSON.parse(raw.toString("utf8")) as unknown;
      body = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    } catch {
      body = undefined;
    }
    const rec: PagerDutyEventRecord = {
      seq: ++seq,
      method: req.method ?? "",
      path: (req.url ?? "").split("?")[0] ?? "",
      contentType: req.headers["content-type"],
      body,
      bytes: raw.length,
      routing_key: typeof body?.["routing_key"] === "string" ? body["routing_key"] : undefined,
      event_action: typeof body?.["event_action"] === "string" ? body["event_action"] : undefined,
      dedup_key: typeof body?.["dedup_key"] === "string" ? body["dedup_key"] : undefined,
      status: undefined,
      outcome: "pending",
      response: undefined,
    };
    events.push(rec);

    const fault = faults.shift();
    if (fault?.kind === "hang") {
      rec.outcome = "hung";
      held.add(res);
      return;
    }
    if (fault?.kind === "cut") {
      rec.outcome = "cut";
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "status") {
      rec.outcome = fault.status >= 200 && fault.status < 300 ? "accepted" : "fault";
      const headers: Record<string, string> = fault.retryAfterSeconds !== undefined ? { "retry-after": String(fault.retryAfterSeconds) } : {};
      const answer =
        fault.body !== undefined
          ? fault.body
          : fault.status === 429
          ? { status: "throttle event", message: "Requests for this service are arriving too quickly. Please retry later." }
          : fault.status >= 500
            ? { status: "error", message: "Internal Server Error" }
            : fault.status === 400
              ? { status: "invalid event", message: "Event object is invalid", errors: ["Invalid routing key"] }
              : { status: "error", message: `HTTP ${fault.status}` };
      send(rec, res, fault.status, answer, headers);
      return;
    }

    if (rec.method !== "POST" || (rec.path !== "/v2/enqueue" && rec.path !== "/v2/enqueue/")) {
      rec.outcome = "invalid";
      send(rec, res, rec.method !== "POST" && rec.path.startsWith("/v2/enqueue") ? 405 : 404, { status: "error", message: "Not Found" });
      return;
    }
    if (raw.length > PD_MAX_EVENT_BYTES) return invalid(rec, res, [`Event is too large: ${raw.length} bytes (must be at most 512 KB)`]);
    if (body === undefined) {
      rec.outcome = "invalid";
      send(rec, res, 400, { status: "invalid event", message: "Event object is invalid", errors: ["Could not parse the request body as a JSON object"] });
      return;
    }
    const errors = validate(body);
    if (errors.length > 0) return invalid(rec, res, errors);

    const rk = rec.routing_key!;
    const action = rec.event_action!;
    const dk = rec.dedup_key ?? randomBytes(16).toString("hex");
    rec.dedup_key = dk;
    const open = openAlert(rk, dk);
    if (action === "trigger") {
      const payload = body["payload"] as Record<string, unknown>;
      const links = Array.isArray(body["links"]) ? (body["links"] as unknown[]) : [];
      if (open !== undefined) {
        open.triggers++;
        open.payload = payload;
        open.links = links;
        note(dk, "update");
      } else {
        alerts.push({ routing_key: rk, dedup_key: dk, status: "triggered", triggers: 1, payload, links });
        note(dk, "open");
      }
    } else if (action === "acknowledge") {
      if (open !== undefined) open.status = "acknowledged";
      note(dk, "update");
    } else {
      // PagerDuty accepts a resolve for a dedup_key with no open alert and drops it; it still arrived.
      if (open !== undefined) open.status = "resolved";
      note(dk, "resolve");
    }
    rec.outcome = "accepted";
    send(rec, res, 202, { status: "success", message: "Event processed", dedup_key: dk });
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      // Far over the limit: keep counting, stop storing.
      if (size <= 4 * PD_MAX_EVENT_BYTES) chunks.push(c);
    });
    req.on("end", () => handle(req, res, Buffer.concat(chunks)));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    events,
    alerts: (dedupKey) => (dedupKey === undefined ? [...alerts] : alerts.filter((a) => a.dedup_key === dedupKey)),
    received: (dedupKey) => [...(history.get(dedupKey) ?? [])],
    accepted: () => events.filter((e) => e.status !== undefined && e.status >= 200 && e.status < 300).length,
    failNext: (status, o = {}) => {
      for (let i = 0; i < (o.count ?? 1); i++) faults.push({ kind: "status", status, retryAfterSeconds: o.retryAfterSeconds, body: o.body });
    },
    hangNext: () => void faults.push({ kind: "hang" }),
    cutNext: () => void faults.push({ kind: "cut" }),
    addRoutingKey: (k) => void keys.add(k),
    reset: () => {
      events.length = 0;
      alerts = [];
      history.clear();
      faults.length = 0;
    },
    close: async () => {
      for (const r of held) r.destroy();
      held.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
