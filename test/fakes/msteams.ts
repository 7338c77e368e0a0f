/**
 * A local fake of a Microsoft Teams Workflows webhook: the URL of a Power
 * Automate flow started by "When a Teams webhook request is received", whose
 * flow posts the Adaptive Card it receives. It answers as the flow endpoint
 * (a Logic Apps trigger) does: 202 Accepted with an empty body once the run
 * is queued; errors as `{"error":{"code","message"}}`: 400 for a body that
 * is not JSON or not a message with an Adaptive Card, 401 for a missing or
 * wrong signature (its message echoes the signature it got, as Logic Apps
 * does, so tests prove kubecano never repeats it), 404 for an unknown flow,
 * 403 for a flow that is turned off.
 *
 * Stricter than Teams: unless `strict: false`, a card Teams would not show
 * (over the ~28 KB message limit, unknown elements, empty texts, bad action
 * URLs, mentions without their entity) is refused with 400 `InvalidCard`,
 * where the real flow would answer 202 and then fail its run. A renderer bug
 * therefore shows up as a failed send in any test.
 *
 * Everything accepted is recorded (`posts`), and faults can be injected.
 */
import { randomBytes } from "node:crypto";
import { startFakeServer, type FakeReply, type FakeRequest, type PathMatch } from "./fake-server.js";

export const TEAMS_MESSAGE_LIMIT = 28_000;

export interface TeamsFakeOptions {
  /** Refuse cards Teams would not show (default true). */
  readonly strict?: boolean;
}

export interface TeamsPost {
  readonly flowId: string;
  readonly body: unknown;
  readonly card: Record<string, unknown>;
  /** Size of the request body in bytes. */
  readonly bytes: number;
  /** The fingerprint and status read from the card (kubecano's footer and header). */
  readonly fingerprint: string | undefined;
  readonly status: "FIRING" | "RESOLVED" | undefined;
}

export interface TeamsRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface TeamsFake {
  readonly url: string;
  /** The full URL of a flow (created on first use), signature included. */
  webhookUrl(flowId?: string): string;
  /** The flow's signature (the secret part of its URL). */
  signature(flowId?: string): string;
  readonly posts: TeamsPost[];
  readonly requests: TeamsRequest[];
  disableFlow(flowId?: string): void;
  deleteFlow(flowId?: string): void;
  failNext(status: number, opts?: { retryAfterSeconds?: number; count?: number; path?: PathMatch }): void;
  hangNext(path?: PathMatch): void;
  dropNext(path?: PathMatch): void;
  /** "open" for a first FIRING card, "update" for a FIRING card while one is open, "resolve" for a RESOLVED card. */
  received(fingerprint: string): ("open" | "update" | "resolve")[];
  accepted(): number;
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_FLOW = "8f3c2a1b9d7e4f60a5b4c3d2e1f00a9b";

export async function startTeamsFake(opts: TeamsFakeOptions = {}): Promise<TeamsFake> {
  const strict = opts.strict ?? true;
  const flows = new Map<string, { sig: string; enabled: boolean }>();
  const posts: TeamsPost[] = [];
  const requests: TeamsRequest[] = [];
  const events = new Map<string, ("open" | "update" | "resolve")[]>();
  const open = new Set<string>();
  let acceptedCount = 0;

  const flow = (id: string): { sig: string; enabled: boolean } => {
    let f = flows.get(id);
    if (f === undefined) flows.set(id, (f = { sig: randomBytes(32).toString("base64url"), enabled: true }));
    return f;
  };
  flow(DEFAULT_FLOW);

  const error = (status: number, code: string, message: string): FakeReply => ({ status, body: { error: { code, message } } });

  const handle = (req: FakeRequest): FakeReply => {
    const m = /^\/workflows\/([^/]+)\/triggers\/manual\/paths\/invoke$/.exec(req.path);
    if (m === null) return error(404, "NotFound", `The requested path '${req.path}' was not found.`);
    const id = m[1]!;
    const f = flows.get(id);
    if (f === undefined) return error(404, "WorkflowNotFound", `The workflow '${id}' could not be found.`);
    const sig = req.query.get("sig");
    if (sig === null) return error(401, "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared Access scheme.");
    if (sig !== f.sig) return error(401, "DirectApiInvalidAuthorizationSignature", `The provided authorization signature '${sig}' is not valid for the workflow '${id}'.`);
    if (!f.enabled) return error(403, "WorkflowDisabled", `The workflow '${id}' is disabled and cannot be triggered.`);
    if (req.method !== "POST") return error(400, "TriggerRequestMethodNotValid", `The HTTP method for this request is not valid: expected 'Post' and actual '${req.method}'.`);
    const ctype = String(req.headers["content-type"] ?? "");
    if (!/^application\/json\b/i.test(ctype)) {
      return error(400, "InvalidRequestContent", `The input body for trigger 'manual' of type 'Request' must be of type JSON, but was of type '${ctype === "" ? "application/octet-stream" : ctype}'.`);
    }
    let body: unknown;
    try {
      body = JSON.parse(req.text);
    } catch {
      return error(400, "InvalidRequestContent", "The request content is not valid and could not be deserialized: 'Unexpected character encountered while parsing value'.");
    }
    const attachments = (body as { attachments?: unknown } | null)?.attachments;
    const first = Array.isArray(attachments) ? (attachments[0] as { contentType?: unknown; content?: unknown } | undefined) : undefined;
    if (first === undefined || first.contentType !== "application/vnd.microsoft.card.adaptive" || typeof first.content !== "object" || first.content === null) {
      return error(400, "TriggerInputSchemaMismatch", "The input body for trigger 'manual' of type 'Request' did not match its schema definition: an attachment with an Adaptive Card is required.");
    }
    const bytes = Buffer.byteLength(req.text);
    const card = first.content as Record<string, unknown>;
    if (strict) {
      const problems = checkTeamsCard(body, bytes);
      if (problems.length > 0) return error(400, "InvalidCard", `Teams would not show this card: ${problems.slice(0, 5).join("; ")}`);
    }
    const { fingerprint, status } = readCard(card);
    posts.push({ flowId: id, body, card, bytes, fingerprint, status });
    if (fingerprint !== undefined && status !== undefined) {
      const list = events.get(fingerprint) ?? [];
      if (status === "RESOLVED") {
        list.push("resolve");
        open.delete(fingerprint);
      } else {
        list.push(open.has(fingerprint) ? "update" : "open");
        open.add(fingerprint);
      }
      events.set(fingerprint, list);
    }
    return { status: 202, headers: { "x-ms-workflow-run-id": `08584${randomBytes(8).toString("hex")}`, "x-ms-workflow-name": id } };
  };

  const server = await startFakeServer(
    (req) => {
      const reply = handle(req);
      requests.push({ method: req.method, path: req.path, status: reply.status });
      if (reply.status >= 200 && reply.status < 300) acceptedCount++;
      return reply;
    },
    (status) => ({ error: { code: status === 429 ? "TooManyRequests" : status >= 500 ? "ServiceUnavailable" : "InjectedFault", message: `Injected HTTP ${status}.` } }),
  );

  return {
    url: server.url,
    webhookUrl: (id = DEFAULT_FLOW) =>
      `${server.url}/workflows/${id}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${flow(id).sig}`,
    signature: (id = DEFAULT_FLOW) => flow(id).sig,
    posts,
    requests,
    disableFlow: (id = DEFAULT_FLOW) => {
      flow(id).enabled = false;
    },
    deleteFlow: (id = DEFAULT_FLOW) => {
      flows.delete(id);
    },
    failNext: (status, o) => server.failNext(status, o),
    hangNext: (path) => server.hangNext(path),
    dropNext: (path) => server.dropNext(path),
    received: (fp) => [...(events.get(fp) ?? [])],
    accepted: () => acceptedCount,
    reset() {
      posts.length = 0;
      requests.length = 0;
      events.clear();
      open.clear();
      acceptedCount = 0;
      server.clearFaults();
    },
    close: () => server.close(),
  };
}

/** Reads kubecano's footer ("… fingerprint <fp>") and header ("FIRING"/"RESOLVED") back from a card. */
function readCard(card: Record<string, unknown>): { fingerprint: string | undefined; status: "FIRING" | "RESOLVED" | undefined } {
  let fingerprint: string | undefined;
  let status: "FIRING" | "RESOLVED" | undefined;
  for (const t of texts(card["body"])) {
    const plain = t.replace(/\\(.)/g, "$1");
    const fp = /fingerprint (\S+)$/.exec(plain);
    if (fp !== null) fingerprint = fp[1];
    if (status === undefined) {
      if (/\bRESOLVED\b/.test(plain)) status = "RESOLVED";
      else if (/\bFIRING\b/.test(plain)) status = "FIRING";
    }
  }
  return { fingerprint, status };
}

function texts(elements: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (o["type"] === "TextBlock" && typeof o["text"] === "string") out.push(o["text"]);
      for (const k of ["items", "columns", "body"]) if (k in o) walk(o[k]);
    }
  };
  walk(elements);
  return out;
}

const ELEMENT_TYPES = new Set(["TextBlock", "RichTextBlock", "Container", "ColumnSet", "Column", "FactSet", "Image", "ImageSet", "ActionSet"]);
const COLORS = new Set(["default", "dark", "light", "accent", "good", "warning", "attention"]);
const STYLES = new Set(["default", "emphasis", "good", "attention", "warning", "accent"]);
const SIZES = new Set(["default", "small", "medium", "large", "extralarge"]);
const SPACINGS = new Set(["default", "none", "small", "medium", "large", "extralarge", "padding"]);

/**
 * What Teams would refuse or show broken in a Workflows message, checked
 * independently of kubecano's renderer: the message size, the card's shape
 * (version 1.0–1.5 elements kubecano may use), texts, facts, actions and mentions.
 */
export function checkTeamsCard(payload: unknown, bytes = Buffer.byteLength(JSON.stringify(payload))): string[] {
  const problems: string[] = [];
  if (bytes > TEAMS_MESSAGE_LIMIT) problems.push(`message is ${bytes} bytes, over Teams' ${TEAMS_MESSAGE_LIMIT}`);
  const p = payload as { type?: unknown; attachments?: unknown };
  if (p.type !== "message") problems.push('payload type must be "message"');
  const att = Array.isArray(p.attachments) ? (p.attachments[0] as Record<string, unknown> | undefined) : undefined;
  const card = att?.["content"] as Record<string, unknown> | undefined;
  if (card === undefined) return [...problems, "no card"];
  if (card["type"] !== "AdaptiveCard") problems.push('card type must be "AdaptiveCard"');
  if (typeof card["version"] !== "string" || !/^1\.[0-5]$/.test(card["version"])) problems.push("card version must be 1.0–1.5");
  if (!Array.isArray(card["body"]) || card["body"].length === 0) problems.push("card body must be a non-empty array");
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(JSON.stringify(card))) problems.push("lone UTF-16 surrogate");
  const allTexts: string[] = [];
  const element = (el: unknown, path: string, depth: number): void => {
    if (depth > 8) return void problems.push(`${path}: nested too deep`);
    if (el === null || typeof el !== "object") return void problems.push(`${path}: not an element`);
    const e = el as Record<string, unknown>;
    const type = e["type"];
    if (typeof type !== "string" || !ELEMENT_TYPES.has(type)) return void problems.push(`${path}: unknown element type ${String(type)}`);
    if (e["spacing"] !== undefined && !SPACINGS.has(String(e["spacing"]).toLowerCase())) problems.push(`${path}: bad spacing`);
    switch (type) {
      case "TextBlock": {
        const t = e["text"];
        if (typeof t !== "string" || t.trim() === "" && t !== "\u00a0") problems.push(`${path}: TextBlock needs text`);
        else allTexts.push(t);
        if (e["color"] !== undefined && !COLORS.has(String(e["color"]).toLowerCase())) problems.push(`${path}: bad color`);
        if (e["size"] !== undefined && !SIZES.has(String(e["size"]).toLowerCase())) problems.push(`${path}: bad size`);
        if (e["fontType"] !== undefined && !["default", "monospace"].includes(String(e["fontType"]).toLowerCase())) problems.push(`${path}: bad fontType`);
        if (e["weight"] !== undefined && !["default", "lighter", "bolder"].includes(String(e["weight"]).toLowerCase())) problems.push(`${path}: bad weight`);
        break;
      }
      case "Container": {
        const items = e["items"];
        if (!Array.isArray(items) || items.length === 0) problems.push(`${path}: Container needs items`);
        else items.forEach((it, i) => element(it, `${path}.items[${i}]`, depth + 1));
        if (e["style"] !== undefined && !STYLES.has(String(e["style"]).toLowerCase())) problems.push(`${path}: bad style`);
        break;
      }
      case "FactSet": {
        const facts = e["facts"];
        if (!Array.isArray(facts) || facts.length === 0) problems.push(`${path}: FactSet needs facts`);
        else
          facts.forEach((f, i) => {
            const ff = f as { title?: unknown; value?: unknown };
            if (typeof ff.title !== "string" || typeof ff.value !== "string") problems.push(`${path}.facts[${i}]: title and value must be strings`);
            else allTexts.push(ff.title, ff.value);
          });
        break;
      }
      default:
        break;
    }
  };
  if (Array.isArray(card["body"])) card["body"].forEach((el, i) => element(el, `body[${i}]`, 0));
  const actions = card["actions"];
  if (actions !== undefined) {
    if (!Array.isArray(actions)) problems.push("actions must be an array");
    else
      actions.forEach((a, i) => {
        const aa = a as { type?: unknown; title?: unknown; url?: unknown };
        if (aa.type !== "Action.OpenUrl") return void problems.push(`actions[${i}]: unexpected type`);
        if (typeof aa.title !== "string" || aa.title.trim() === "") problems.push(`actions[${i}]: needs a title`);
        let ok = false;
        try {
          ok = typeof aa.url === "string" && ["http:", "https:"].includes(new URL(aa.url).protocol);
        } catch {
          ok = false;
        }
        if (!ok) problems.push(`actions[${i}]: url must be an absolute http(s) URL`);
      });
  }
  const entities = ((card["msteams"] as { entities?: unknown } | undefined)?.entities ?? []) as { type?: unknown; text?: unknown; mentioned?: { id?: unknown; name?: unknown } }[];
  const entityTexts = new Set<string>();
  for (const [i, en] of entities.entries()) {
    if (en.type !== "mention" || typeof en.text !== "string" || typeof en.mentioned?.id !== "string" || typeof en.mentioned.name !== "string") {
      problems.push(`msteams.entities[${i}]: malformed mention`);
      continue;
    }
    entityTexts.add(en.text);
    if (!allTexts.some((t) => t.includes(en.text as string))) problems.push(`msteams.entities[${i}]: ${en.text} appears in no text`);
  }
  for (const t of allTexts) for (const m of t.matchAll(/<at>.*?<\/at>/g)) if (!entityTexts.has(m[0])) problems.push(`${m[0]} has no mention entity`);
  return problems;
}
