/**
 * A local fake of the Opsgenie Alert API v2, on node:http (127.0.0.1, an
 * ephemeral port). Point kubecano's opsgenie destination at it with
 * `api_url: fake.url`.
 *
 * It speaks the API as documented (docs.opsgenie.com "Alert API"):
 * - `POST /v2/alerts` creates an alert; `POST /v2/alerts/{identifier}/close
 *   ?identifierType=id|alias|tiny` closes one. Both answer 202
 *   `{result:"Request will be processed", took, requestId}`: Opsgenie works
 *   asynchronously, and a close for an unknown alert is accepted too (its
 *   request status says it failed: `GET /v2/alerts/requests/{requestId}`).
 * - `GET /v2/alerts/{identifier}?identifierType=...` reads an alert back.
 * - The key goes in `Authorization: GenieKey <key>`: none or an unknown one
 *   is 401, a key without the rights for the call is 403 (with Opsgenie's
 *   40301 answer for keys that are not from an API integration).
 * - A field Opsgenie refuses is 422 `{message:"Request body is not
 *   processable. Please check the errors.", errors:{field: reason}, took,
 *   requestId}`: message (1–130), alias (512), description (15000), tags
 *   (20 × 50), details (string values, 8000 characters), entity (512), source
 *   and user (100), note (25000), priority (P1–P5), responders (50, each a
 *   team/user/escalation/schedule by id, name or username).
 * - A create for an alias that has an open alert does not open another: the
 *   alert's count goes up (Opsgenie's de-duplication).
 * - `createDelayMs` delays the effect of accepted creates, as Opsgenie's
 *   queue may; `closeUnknown: 404` answers a close of an unknown alert 404.
 *
 * Everything is recorded (`requests`) and faults can be injected: an HTTP
 * status (with Retry-After), a request never answered, a cut connection.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** The API key every fake accepts unless `apiKeys` says otherwise (Opsgenie keys are UUIDs). */
export const OG_FAKE_API_KEY = "6f1d2c3b-4a59-4e7d-8c1b-0fa4e5d6c7b8";

export const OG_LIMITS = { message: 130, alias: 512, description: 15_000, tags: 20, tag: 50, details: 8_000, entity: 512, source: 100, user: 100, note: 25_000, responders: 50 } as const;

const PRIORITIES = ["P1", "P2", "P3", "P4", "P5"];
const RESPONDER_TYPES = ["team", "user", "escalation", "schedule"];

export interface FakeApiKey {
  /**
   * full: an API integration with Create and Update access; read: Read access
   * only; account: a key from API key management, not an integration (403 40301).
   */
  readonly access?: "full" | "read" | "account";
}

export interface OpsgenieFakeOptions {
  /** Keys that exist (a list gets full access). Default: OG_FAKE_API_KEY. */
  readonly apiKeys?: readonly string[] | Readonly<Record<string, FakeApiKey>>;
  /** Error texts quote the key, as a careless remote might: proves kubecano scrubs remote text. */
  readonly echoApiKey?: boolean;
  /**
   * Accepted creates take effect this much later, while closes take effect
   * at once: Opsgenie's queue does not promise that a close sent right
   * behind a create is processed after it. Default 0: at once.
   */
  readonly createDelayMs?: number;
  /**
   * A close for an alert that does not exist (yet): "accepted" (202, the
   * request then fails in the background; the documented behaviour, default)
   * or 404 `{message:"Alert does not exist"}`, as some accounts answer.
   */
  readonly closeUnknown?: "accepted" | 404;
}

export type RequestOutcome = "pending" | "accepted" | "unauthorized" | "forbidden" | "invalid" | "not_found" | "fault" | "hung" | "cut";
export type HistoryEntry = "open" | "update" | "resolve";

/** One HTTP request the fake received. Mutated in place as it is answered. */
export interface OpsgenieRequestRecord {
  readonly seq: number;
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** "create", "close", "get", "request-status", or "unknown". */
  readonly action: string;
  /** The key from `Authorization: GenieKey <key>`. */
  readonly apiKey: string | undefined;
  readonly body: Record<string, unknown> | undefined;
  status: number | undefined;
  outcome: RequestOutcome;
  response: unknown;
}

export interface OpsgenieAlert {
  readonly id: string;
  readonly tinyId: string;
  readonly alias: string;
  status: "open" | "closed";
  /** Creates folded into this alert (the first one included). */
  count: number;
  message: string;
  description: string | undefined;
  priority: string;
  responders: unknown[];
  tags: string[];
  details: Record<string, string>;
  entity: string | undefined;
  source: string | undefined;
  /** Close notes. */
  notes: string[];
}

export interface FailOptions {
  readonly retryAfterSeconds?: number;
  readonly count?: number;
  /** Fields of the answer's JSON body (took and requestId are added), instead of Opsgenie's usual one for the status. */
  readonly body?: Record<string, unknown>;
}

export interface OpsgenieFake {
  /** http://127.0.0.1:PORT — the destination's api_url. */
  readonly url: string;
  readonly requests: readonly OpsgenieRequestRecord[];
  /** Alerts, oldest first; with an alias, the alerts that had it. */
  alerts(alias?: string): readonly OpsgenieAlert[];
  /** What happened to an alias, in order: "open" (new alert), "update" (a create folded into the open one), "resolve" (a close). */
  received(alias: string): readonly HistoryEntry[];
  /** Requests answered 2xx so far. */
  accepted(): number;
  failNext(status: number, opts?: FailOptions): void;
  hangNext(): void;
  cutNext(): void;
  reset(): void;
  close(): Promise<void>;
}

type Fault = { kind: "status"; status: number; retryAfterSeconds?: number | undefined; body?: Record<string, unknown> | undefined } | { kind: "hang" } | { kind: "cut" };
interface RequestStatus {
  readonly action: "Create" | "Close";
  readonly success: boolean;
  readonly status: string;
  readonly alertId: string;
  readonly alias: string;
}

export async function startOpsgenieFake(opts: OpsgenieFakeOptions = {}): Promise<OpsgenieFake> {
  const keys = new Map<string, FakeApiKey>(
    Array.isArray(opts.apiKeys)
      ? (opts.apiKeys as readonly string[]).map((k) => [k, { access: "full" }])
      : Object.entries((opts.apiKeys as Record<string, FakeApiKey> | undefined) ?? { [OG_FAKE_API_KEY]: { access: "full" } }),
  );
  const requests: OpsgenieRequestRecord[] = [];
  let alerts: OpsgenieAlert[] = [];
  const history = new Map<string, HistoryEntry[]>();
  const statuses = new Map<string, RequestStatus>();
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();
  let seq = 0;
  let tiny = 0;

  const note = (alias: string, h: HistoryEntry): void => {
    const list = history.get(alias) ?? [];
    list.push(h);
    history.set(alias, list);
  };
  const answer = (rec: OpsgenieRequestRecord, res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void => {
    const full = { ...body, took: 0.004, requestId: randomUUID() };
    rec.status = status;
    rec.response = full;
    const text = JSON.stringify(full);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const unprocessable = (rec: OpsgenieRequestRecord, res: ServerResponse, errors: Record<string, string>): void => {
    rec.outcome = "invalid";
    answer(rec, res, 422, { message: "Request body is not processable. Please check the errors.", errors });
  };
  const find = (identifier: string, type: string): OpsgenieAlert | undefined => {
    const matches = alerts.filter((a) => (type === "alias" ? a.alias === identifier : type === "tiny" ? a.tinyId === identifier : a.id === identifier));
    return matches.find((a) => a.status === "open") ?? matches[matches.length - 1];
  };

  const maxLength = (errors: Record<string, string>, body: Record<string, unknown>, field: string, max: number, label: string): void => {
    const v = body[field];
    if (v === undefined) return;
    if (typeof v !== "string") errors[field] = `${label} should be a string`;
    else if (v.length > max) errors[field] = `${label} can not be longer than ${max} characters.`;
  };

  const validateCreate = (b: Record<string, unknown>): Record<string, string> => {
    const errors: Record<string, string> = {};
    const message = b["message"];
    if (typeof message !== "string" || message.trim() === "") errors["message"] = "Message can not be empty.";
    else maxLength(errors, b, "message", OG_LIMITS.message, "Message");
    maxLength(errors, b, "alias", OG_LIMITS.alias, "Alias");
    maxLength(errors, b, "description", OG_LIMITS.description, "Description");
    maxLength(errors, b, "entity", OG_LIMITS.entity, "Entity");
    maxLength(errors, b, "source", OG_LIMITS.source, "Source");
    maxLength(errors, b, "user", OG_LIMITS.user, "User");
    maxLength(errors, b, "note", OG_LIMITS.note, "Note");
    const priority = b["priority"];
    if (priority !== undefined && (typeof priority !== "string" || !PRIORITIES.includes(priority))) errors["priority"] = "should be one of [ P1, P2, P3, P4, P5 ]";
    const tags = b["tags"];
    if (tags !== undefined) {
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) errors["tags"] = "Tags should be a list of strings";
      else if (tags.length > OG_LIMITS.tags) errors["tags"] = `Tags can not be more than ${OG_LIMITS.tags}.`;
      else if (tags.some((t: string) => t.length > OG_LIMITS.tag)) errors["tags"] = `Tag can not be longer than ${OG_LIMITS.tag} characters.`;
    }
    const details = b["details"];
    if (details !== undefined) {
      if (details === null || typeof details !== "object" || Array.isArray(details) || Object.values(details).some((v) => typeof v !== "string")) errors["details"] = "Details should be a map of strings";
      else if (Object.entries(details as Record<string, string>).reduce((n, [k, v]) => n + k.length + v.length, 0) > OG_LIMITS.details)
        errors["details"] = `Details can not be longer than ${OG_LIMITS.details} characters in total.`;
    }
    const responders = b["responders"];
    if (responders !== undefined) {
      if (!Array.isArray(responders)) errors["responders"] = "Responders should be a list";
      else if (responders.length > OG_LIMITS.responders) errors["responders"] = `Responders can not be more than ${OG_LIMITS.responders}.`;
      else
        responders.forEach((r: unknown, i) => {
          const o = (r ?? {}) as Record<string, unknown>;
          const type = o["type"];
          const named = ["id", "name", "username"].filter((k) => typeof o[k] === "string" && (o[k] as string) !== "");
          if (typeof type !== "string" || !RESPONDER_TYPES.includes(type)) errors[`responders[${i}].type`] = "should be one of [ team, user, escalation, schedule ]";
          else if (named.length === 0) errors[`responders[${i}]`] = "Responder should have one of id, name or username.";
          else if (type === "user" && !named.some((k) => k === "id" || k === "username")) errors[`responders[${i}]`] = "User responder should have id or username.";
          else if (type !== "user" && !named.some((k) => k === "id" || k === "name")) errors[`responders[${i}]`] = `${type} responder should have id or name.`;
        });
    }
    for (const k of ["visibleTo", "actions"]) if (b[k] !== undefined && !Array.isArray(b[k])) errors[k] = `${k} should be a list`;
    return errors;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: Buffer): void => {
    const u = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "";
    const parts = u.pathname.split("/").filter((p) => p !== "");
    let action = "unknown";
    let identifier: string | undefined;
    if (parts[0] === "v2" && parts[1] === "alerts") {
      if (parts.length === 2 && method === "POST") {
        action = "create";
      } else if (parts.length === 4 && parts[2] === "requests" && method === "GET") {
        action = "request-status";
        identifier = decodeURIComponent(parts[3]!);
      } else if (parts.length === 4 && parts[3] === "close" && method === "POST") {
        action = "close";
        identifier = decodeURIComponent(parts[2]!);
      } else if (parts.length === 3 && method === "GET") {
        action = "get";
        identifier = decodeURIComponent(parts[2]!);
      }
    }
    let body: Record<string, unknown> | undefined;
    if (raw.length > 0) {
      try {
        const parsed = JSON.parse(raw.toString("utf8")) as unknown;
        body = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
    }
    const auth = req.headers.authorization;
    const m = typeof auth === "string" ? /^GenieKey\s+(\S+)$/i.exec(auth.trim()) : null;
    const rec: OpsgenieRequestRecord = {
      seq: ++seq,
      method,
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      action,
      apiKey: m?.[1],
      body,
      status: undefined,
      outcome: "pending",
      response: undefined,
    };
    requests.push(rec);

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
      const message =
        fault.status === 429
          ? "You are making too many requests! To avoid errors, we recommend you limit requests."
          : fault.status >= 500
            ? "Internal Server Error"
            : fault.status === 401
              ? "Could not authenticate"
              : fault.status === 422
                ? "Request body is not processable. Please check the errors."
                : `HTTP ${fault.status}`;
      answer(rec, res, fault.status, fault.body ?? { message, ...(fault.status === 422 ? { errors: { message: "injected fault" } } : {}) }, headers);
      return;
    }

    const quote = (k: string): string => (opts.echoApiKey === true ? ` (key ${k})` : "");
    if (rec.apiKey === undefined) {
      rec.outcome = "unauthorized";
      return answer(rec, res, 401, { message: "Key format is not valid!" });
    }
    const key = keys.get(rec.apiKey);
    if (key === undefined) {
      rec.outcome = "unauthorized";
      return answer(rec, res, 401, { message: `Could not authenticate${quote(rec.apiKey)}` });
    }
    if (action === "unknown") {
      rec.outcome = "not_found";
      return answer(rec, res, 404, { message: "No handler found for the request" });
    }
    const writes = action === "create" || action === "close";
    if (key.access === "account") {
      rec.outcome = "forbidden";
      return answer(rec, res, 403, { code: 40301, message: "To perform this action, use an API key from an API integration." });
    }
    if (writes && key.access === "read") {
      rec.outcome = "forbidden";
      return answer(rec, res, 403, { message: `The integration does not have create and update access${quote(rec.apiKey)}` });
    }

    if (action === "get") {
      const type = rec.query["identifierType"] ?? "id";
      const alert = find(identifier!, type);
      if (alert === undefined) {
        rec.outcome = "not_found";
        return answer(rec, res, 404, { message: "Alert does not exist" });
      }
      rec.outcome = "accepted";
      return answer(rec, res, 200, { data: { ...alert } });
    }
    if (action === "request-status") {
      const st = statuses.get(identifier!);
      if (st === undefined) {
        rec.outcome = "not_found";
        return answer(rec, res, 404, { message: "Request does not exist" });
      }
      rec.outcome = "accepted";
      return answer(rec, res, 200, { data: { ...st, isSuccess: st.success, processedAt: new Date().toISOString() } });
    }

    if (body === undefined && (action === "create" || raw.length > 0)) return unprocessable(rec, res, { body: "Request body should be a JSON object." });
    const b = body ?? {};
    if (action === "create") {
      const errors = validateCreate(b);
      if (Object.keys(errors).length > 0) return unprocessable(rec, res, errors);
      rec.outcome = "accepted";
      answer(rec, res, 202, { result: "Request will be processed" });
      const requestId = (rec.response as { requestId: string }).requestId;
      if (opts.createDelayMs === undefined || opts.createDelayMs <= 0) applyCreate(b, requestId);
      else setTimeout(() => applyCreate(b, requestId), opts.createDelayMs);
      return;
    }
    // close
    const type = rec.query["identifierType"] ?? "id";
    if (!["id", "alias", "tiny"].includes(type)) return unprocessable(rec, res, { identifierType: "should be one of [ id, alias, tiny ]" });
    const errors: Record<string, string> = {};
    maxLength(errors, b, "note", OG_LIMITS.note, "Note");
    maxLength(errors, b, "source", OG_LIMITS.source, "Source");
    maxLength(errors, b, "user", OG_LIMITS.user, "User");
    if (Object.keys(errors).length > 0) return unprocessable(rec, res, errors);
    if (opts.closeUnknown === 404 && find(identifier!, type) === undefined) {
      rec.outcome = "not_found";
      return answer(rec, res, 404, { message: "Alert does not exist" });
    }
    rec.outcome = "accepted";
    answer(rec, res, 202, { result: "Request will be processed" });
    applyClose(identifier!, type, b, (rec.response as { requestId: string }).requestId);
  };

  const applyCreate = (b: Record<string, unknown>, requestId: string): void => {
    const alias = typeof b["alias"] === "string" && b["alias"] !== "" ? b["alias"] : (b["message"] as string);
    const open = alerts.find((a) => a.alias === alias && a.status === "open");
    let alert: OpsgenieAlert;
    if (open !== undefined) {
      open.count++;
      alert = open;
      note(alias, "update");
    } else {
      alert = {
        id: randomUUID(),
        tinyId: String(++tiny),
        alias,
        status: "open",
        count: 1,
        message: b["message"] as string,
        description: b["description"] as string | undefined,
        priority: (b["priority"] as string | undefined) ?? "P3",
        responders: (b["responders"] as unknown[] | undefined) ?? [],
        tags: (b["tags"] as string[] | undefined) ?? [],
        details: (b["details"] as Record<string, string> | undefined) ?? {},
        entity: b["entity"] as string | undefined,
        source: b["source"] as string | undefined,
        notes: [],
      };
      alerts.push(alert);
      note(alias, "open");
    }
    statuses.set(requestId, { action: "Create", success: true, status: "Created alert", alertId: alert.id, alias });
  };

  const applyClose = (identifier: string, type: string, b: Record<string, unknown>, requestId: string): void => {
    const alert = find(identifier, type);
    if (alert !== undefined && alert.status === "open") {
      alert.status = "closed";
      if (typeof b["note"] === "string") alert.notes.push(b["note"]);
    }
    note(alert?.alias ?? identifier, "resolve");
    statuses.set(
      requestId,
      alert !== undefined ? { action: "Close", success: true, status: "Closed alert", alertId: alert.id, alias: alert.alias } : { action: "Close", success: false, status: "Alert does not exist", alertId: "", alias: identifier },
    );
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= 4 * 1024 * 1024) chunks.push(c);
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
    requests,
    alerts: (alias) => (alias === undefined ? [...alerts] : alerts.filter((a) => a.alias === alias)),
    received: (alias) => [...(history.get(alias) ?? [])],
    accepted: () => requests.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300).length,
    failNext: (status, o = {}) => {
      for (let i = 0; i < (o.count ?? 1); i++) faults.push({ kind: "status", status, retryAfterSeconds: o.retryAfterSeconds, body: o.body });
    },
    hangNext: () => void faults.push({ kind: "hang" }),
    cutNext: () => void faults.push({ kind: "cut" }),
    reset: () => {
      requests.length = 0;
      alerts = [];
      history.clear();
      statuses.clear();
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
