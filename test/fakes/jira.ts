/**
 * A local fake of the subset of the Jira Cloud REST API v3 kubecano uses:
 *
 *   POST /rest/api/3/search/jql          (and GET with ?jql=): JQL `project = X AND labels = "…" [AND status…] [ORDER BY created DESC]`
 *   POST /rest/api/3/issue               create, with field validation and ADF checks
 *   GET  /rest/api/3/issue/{key}         ?fields=status,created,…
 *   POST /rest/api/3/issue/{key}/comment
 *   GET  /rest/api/3/issue/{key}/transitions
 *   POST /rest/api/3/issue/{key}/transitions   (with update.comment)
 *
 * Basic auth (`email:api_token`) is checked on every call: 401 with Jira
 * Cloud's text body for bad credentials, 403 for a project the account may
 * see but not change. Errors have Jira's shape `{"errorMessages":[],"errors":{}}`:
 * 400 with field errors for bad fields (unknown project, issue type,
 * priority, component, labels with spaces, a summary over 255 characters or
 * with a newline), 404 for unknown issues. The search endpoint refuses
 * unknown body keys (like the removed `startAt`) as Jira does.
 *
 * Documents (description, comments) are checked against the ADF rules Jira
 * enforces (an independent implementation: a kubecano renderer bug shows up
 * as a 400) and the 32,767-character field limit.
 *
 * The workflow is small: To Do → In Progress → Done, with Done reachable
 * from To Do too and "Reopen" from Done back to To Do; options replace it.
 * Everything is recorded, and faults can be injected.
 */
import { startFakeServer, type FakeReply, type FakeRequest, type PathMatch } from "./fake-server.js";

export const JIRA_USER = "kubecano-bot@example.com";
export const JIRA_TOKEN = "ATATT3xFfGF0-fake-jira-api-token-SECRET-0123456789";
export const FIELD_LIMIT = 32_767;

export type StatusCategory = "new" | "indeterminate" | "done";

export interface FakeStatus {
  readonly id: string;
  readonly name: string;
  readonly category: StatusCategory;
}

export interface FakeTransition {
  readonly id: string;
  readonly name: string;
  /** Status names it leaves from. */
  readonly from: readonly string[];
  readonly to: string;
}

export interface FakeProject {
  readonly key: string;
  readonly issueTypes?: readonly string[];
  readonly priorities?: readonly string[];
  readonly components?: readonly string[];
  /** Whether Priority is on the create screen (default true). */
  readonly priorityOnScreen?: boolean;
}

export interface FakeUser {
  readonly email: string;
  readonly token: string;
  /** Projects this account can see but not change (403 on writes). */
  readonly readOnlyProjects?: readonly string[];
  /** Projects this account cannot see at all. */
  readonly hiddenProjects?: readonly string[];
}

export interface JiraFakeOptions {
  readonly users?: readonly FakeUser[];
  readonly projects?: readonly FakeProject[];
  readonly statuses?: readonly FakeStatus[];
  readonly transitions?: readonly FakeTransition[];
  /** Whether transitions have a screen that takes a comment (default true). */
  readonly transitionScreens?: boolean;
}

export interface FakeComment {
  readonly id: string;
  readonly body: unknown;
  readonly created: string;
}

export interface FakeIssue {
  readonly id: string;
  key: string;
  readonly project: string;
  readonly fields: Record<string, unknown>;
  status: string;
  readonly created: string;
  readonly comments: FakeComment[];
  /** Transitions run, in order (names). */
  readonly transitions: string[];
}

export interface JiraRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly body: unknown;
  readonly status: number;
  /** The account the request authenticated as. */
  readonly user: string | undefined;
}

export interface JiraFake {
  readonly url: string;
  readonly issues: FakeIssue[];
  readonly requests: JiraRequestRecord[];
  /** ADF problems found in refused documents, for test diagnostics. */
  readonly adfProblems: string[];
  issue(key: string): FakeIssue | undefined;
  /** Issues carrying kubecano's label for this fingerprint. */
  issuesFor(fingerprint: string): FakeIssue[];
  /** A person moves an issue (no transition rules). */
  setStatus(key: string, status: string): void;
  deleteIssue(key: string): void;
  failNext(status: number, opts?: { retryAfterSeconds?: number; count?: number; path?: PathMatch }): void;
  hangNext(path?: PathMatch): void;
  dropNext(path?: PathMatch): void;
  /** "open" per create or reopen, "update" per comment, "resolve" per transition into Done. */
  received(fingerprint: string): ("open" | "update" | "resolve")[];
  /** Writes (create, comment, transition) answered with a 2xx: what was delivered. */
  accepted(): number;
  reset(): void;
  close(): Promise<void>;
}

export const DEFAULT_STATUSES: readonly FakeStatus[] = [
  { id: "10000", name: "To Do", category: "new" },
  { id: "3", name: "In Progress", category: "indeterminate" },
  { id: "10001", name: "Done", category: "done" },
];

export const DEFAULT_TRANSITIONS: readonly FakeTransition[] = [
  { id: "21", name: "Start Progress", from: ["To Do"], to: "In Progress" },
  { id: "31", name: "Done", from: ["To Do", "In Progress"], to: "Done" },
  { id: "41", name: "Reopen", from: ["Done"], to: "To Do" },
  { id: "51", name: "Stop Progress", from: ["In Progress"], to: "To Do" },
];

export const DEFAULT_PROJECT: FakeProject = {
  key: "OPS",
  issueTypes: ["Bug", "Task", "Incident"],
  priorities: ["Highest", "High", "Medium", "Low", "Lowest"],
  components: ["api", "platform"],
  priorityOnScreen: true,
};

const CATEGORY: Record<StatusCategory, { id: number; key: StatusCategory; colorName: string; name: string }> = {
  new: { id: 2, key: "new", colorName: "blue-gray", name: "To Do" },
  indeterminate: { id: 4, key: "indeterminate", colorName: "yellow", name: "In Progress" },
  done: { id: 3, key: "done", colorName: "green", name: "Done" },
};

const FP_LABEL = "kubecano-fp-";

export async function startJiraFake(opts: JiraFakeOptions = {}): Promise<JiraFake> {
  const users = opts.users ?? [{ email: JIRA_USER, token: JIRA_TOKEN }];
  const projects = opts.projects ?? [DEFAULT_PROJECT];
  const statuses = opts.statuses ?? DEFAULT_STATUSES;
  const workflow = opts.transitions ?? DEFAULT_TRANSITIONS;
  const screens = opts.transitionScreens ?? true;
  const issues: FakeIssue[] = [];
  const requests: JiraRequestRecord[] = [];
  const adfProblems: string[] = [];
  const events = new Map<string, ("open" | "update" | "resolve")[]>();
  const counters = new Map<string, number>();
  let nextId = 10_000;
  let nextComment = 10_000;
  let acceptedCount = 0;
  let url = "";

  const status = (name: string): FakeStatus => statuses.find((s) => s.name === name) ?? statuses[0]!;
  const statusJson = (name: string): Record<string, unknown> => {
    const s = status(name);
    return { self: `${url}/rest/api/3/status/${s.id}`, description: "", iconUrl: `${url}/images/icons/statuses/generic.png`, name: s.name, id: s.id, statusCategory: { self: `${url}/rest/api/3/statuscategory/${CATEGORY[s.category].id}`, ...CATEGORY[s.category] } };
  };
  const errors = (status: number, errorMessages: string[], fieldErrors: Record<string, string> = {}): FakeReply => ({ status, body: { errorMessages, errors: fieldErrors } });
  const event = (issue: FakeIssue, e: "open" | "update" | "resolve"): void => {
    const labels = (issue.fields["labels"] as string[] | undefined) ?? [];
    for (const l of labels) {
      if (!l.startsWith(FP_LABEL)) continue;
      const fp = l.slice(FP_LABEL.length);
      events.set(fp, [...(events.get(fp) ?? []), e]);
    }
  };
  const find = (key: string, user: FakeUser): FakeIssue | undefined => {
    const i = issues.find((x) => x.key.toUpperCase() === key.toUpperCase() || x.id === key);
    return i !== undefined && !(user.hiddenProjects ?? []).includes(i.project) ? i : undefined;
  };
  const issueJson = (i: FakeIssue, fields: string[] | undefined): Record<string, unknown> => {
    const all: Record<string, unknown> = { ...i.fields, status: statusJson(i.status), created: i.created, updated: i.created, project: { key: i.project } };
    const wanted = fields === undefined || fields.includes("*all") ? Object.keys(all) : fields;
    return { id: i.id, key: i.key, self: `${url}/rest/api/3/issue/${i.id}`, fields: Object.fromEntries(wanted.filter((f) => f in all).map((f) => [f, all[f]])) };
  };
  const available = (i: FakeIssue): FakeTransition[] => workflow.filter((t) => t.from.includes(i.status));

  function authenticate(req: FakeRequest): FakeUser | undefined {
    const h = String(req.headers["authorization"] ?? "");
    const m = /^Basic\s+(\S+)$/i.exec(h);
    if (m === null) return undefined;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return users.find((u) => u.email === decoded.slice(0, colon) && u.token === decoded.slice(colon + 1));
  }

  function parseJson(req: FakeRequest): { ok: true; value: Record<string, unknown> } | { ok: false; reply: FakeReply } {
    if (!/^application\/json\b/i.test(String(req.headers["content-type"] ?? ""))) return { ok: false, reply: { status: 415, body: "Unsupported Media Type" } };
    try {
      const v = JSON.parse(req.text) as unknown;
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
      return { ok: true, value: v as Record<string, unknown> };
    } catch {
      return { ok: false, reply: errors(400, ["Unexpected character: was expecting a JSON value."]) };
    }
  }

  function search(user: FakeUser, body: Record<string, unknown>): FakeReply {
    const allowed = new Set(["jql", "nextPageToken", "maxResults", "fields", "expand", "properties", "fieldsByKeys", "failFast", "reconcileIssues"]);
    if (Object.keys(body).some((k) => !allowed.has(k))) return errors(400, ["Invalid request payload. Refer to the REST API documentation and try again."]);
    const jql = typeof body["jql"] === "string" ? body["jql"] : "";
    const parsed = parseJql(jql);
    if ("error" in parsed) return { status: 400, body: { errorMessages: [parsed.error], errors: {}, warningMessages: [] } };
    const visible = projects.filter((p) => !(user.hiddenProjects ?? []).includes(p.key)).map((p) => p.key);
    for (const c of parsed.clauses) {
      if (c.field === "project" && !visible.includes(c.value.toUpperCase())) return { status: 400, body: { errorMessages: [`The value '${c.value}' does not exist for the field 'project'.`], errors: {}, warningMessages: [] } };
    }
    let found = issues.filter((i) => visible.includes(i.project)).filter((i) =>
      parsed.clauses.every((c) => {
        switch (c.field) {
          case "project":
            return i.project === c.value.toUpperCase();
          case "labels":
            return ((i.fields["labels"] as string[] | undefined) ?? []).includes(c.value);
          case "status":
            return i.status.toLowerCase() === c.value.toLowerCase();
          case "statuscategory":
            return status(i.status).category === c.value.toLowerCase() || CATEGORY[status(i.status).category].name.toLowerCase() === c.value.toLowerCase();
          default:
            return false;
        }
      }),
    );
    // Keys sort like creation here: newest first for DESC.
    found = parsed.order === "asc" ? found : [...found].reverse();
    const max = typeof body["maxResults"] === "number" ? Math.max(0, Math.min(5000, body["maxResults"])) : 50;
    const fields = Array.isArray(body["fields"]) ? (body["fields"] as string[]) : [];
    return { status: 200, body: { issues: found.slice(0, max).map((i) => (fields.length === 0 ? { id: i.id } : issueJson(i, fields))), isLast: found.length <= max } };
  }

  function createIssue(user: FakeUser, body: Record<string, unknown>): FakeReply {
    const f = (body["fields"] ?? {}) as Record<string, unknown>;
    const fieldErrors: Record<string, string> = {};
    const projectKey = String((f["project"] as { key?: unknown } | undefined)?.key ?? "").toUpperCase();
    const project = projects.find((p) => p.key === projectKey && !(user.hiddenProjects ?? []).includes(p.key));
    if (project === undefined) return errors(400, [], { project: "valid project is required" });
    if ((user.readOnlyProjects ?? []).includes(project.key)) return errors(403, ["You do not have permission to create issues in this project."]);
    const issueType = (f["issuetype"] as { name?: unknown } | undefined)?.name;
    if (typeof issueType !== "string" || !(project.issueTypes ?? ["Bug"]).includes(issueType)) fieldErrors["issuetype"] = "The issue type selected is invalid.";
    const summary = f["summary"];
    if (typeof summary !== "string" || summary.trim() === "") fieldErrors["summary"] = "You must specify a summary of the issue.";
    else if (summary.length > 255) fieldErrors["summary"] = "Summary must be less than 255 characters.";
    else if (/[\r\n]/.test(summary)) fieldErrors["summary"] = "The summary is invalid because it contains newline characters.";
    if (f["description"] !== undefined) {
      const problems = checkAdf(f["description"]);
      if (problems.length > 0) {
        adfProblems.push(...problems);
        fieldErrors["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)";
      } else if (JSON.stringify(f["description"]).length > FIELD_LIMIT) fieldErrors["description"] = "The entered text is too long. It exceeds the allowed limit of 32,767 characters.";
    }
    const labels = f["labels"];
    if (labels !== undefined) {
      if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string")) fieldErrors["labels"] = "Labels must be strings.";
      else {
        const bad = labels.find((l: string) => /\s/.test(l) || l.length > 255 || l === "");
        if (bad !== undefined) fieldErrors["labels"] = `The label '${bad}' contains spaces which is invalid.`;
      }
    }
    if (f["priority"] !== undefined) {
      const name = (f["priority"] as { name?: unknown }).name;
      if (project.priorityOnScreen === false) fieldErrors["priority"] = "Field 'priority' cannot be set. It is not on the appropriate screen, or unknown.";
      else if (typeof name !== "string" || !(project.priorities ?? []).includes(name)) fieldErrors["priority"] = `Specify a valid value for priority: '${String(name)}' is not one.`;
    }
    if (f["components"] !== undefined) {
      const names = Array.isArray(f["components"]) ? (f["components"] as { name?: unknown }[]).map((c) => c.name) : [undefined];
      const bad = names.find((n) => typeof n !== "string" || !(project.components ?? []).includes(n));
      if (bad !== undefined || !Array.isArray(f["components"])) fieldErrors["components"] = `Component name '${String(bad)}' is not valid`;
    }
    if (Object.keys(fieldErrors).length > 0) return errors(400, [], fieldErrors);
    const n = (counters.get(project.key) ?? 0) + 1;
    counters.set(project.key, n);
    const id = String(nextId++);
    const issue: FakeIssue = {
      id,
      key: `${project.key}-${n}`,
      project: project.key,
      fields: { ...f, project: { key: project.key } },
      status: statuses.find((s) => s.category === "new")?.name ?? statuses[0]!.name,
      created: new Date().toISOString().replace("Z", "+0000"),
      comments: [],
      transitions: [],
    };
    issues.push(issue);
    event(issue, "open");
    return { status: 201, body: { id, key: issue.key, self: `${url}/rest/api/3/issue/${id}` } };
  }

  function addComment(i: FakeIssue, body: unknown): string | undefined {
    const problems = checkAdf(body);
    if (problems.length > 0) {
      adfProblems.push(...problems);
      return "Comment body is not valid: it must be an Atlassian Document (see the Atlassian Document Format)";
    }
    if (JSON.stringify(body).length > FIELD_LIMIT) return "The entered text is too long. It exceeds the allowed limit of 32,767 characters.";
    i.comments.push({ id: String(nextComment++), body, created: new Date().toISOString() });
    return undefined;
  }

  function transition(user: FakeUser, i: FakeIssue, body: Record<string, unknown>): FakeReply {
    if ((user.readOnlyProjects ?? []).includes(i.project)) return errors(403, ["You do not have permission to transition this issue."]);
    const id = (body["transition"] as { id?: unknown } | undefined)?.id;
    if (id === undefined) return errors(400, ["Missing 'transition' identifier"]);
    const t = available(i).find((x) => x.id === String(id));
    if (t === undefined) return errors(400, [`Transition id '${String(id)}' is not valid for this issue.`]);
    const comments = ((body["update"] as { comment?: unknown } | undefined)?.comment ?? []) as { add?: { body?: unknown } }[];
    if (comments.length > 0 && !screens) return errors(400, [], { comment: "Field 'comment' cannot be set. It is not on the appropriate screen, or unknown." });
    for (const c of comments) {
      const problem = checkAdf(c.add?.body);
      if (problem.length > 0) {
        adfProblems.push(...problem);
        return errors(400, [], { comment: "Comment body is not valid: it must be an Atlassian Document (see the Atlassian Document Format)" });
      }
    }
    const before = status(i.status).category;
    for (const c of comments) addComment(i, c.add?.body);
    i.status = t.to;
    i.transitions.push(t.name);
    const after = status(i.status).category;
    if (after === "done" && before !== "done") event(i, "resolve");
    else if (before === "done" && after !== "done") event(i, "open");
    return { status: 204 };
  }

  const handle = (req: FakeRequest): FakeReply => {
    const user = authenticate(req);
    if (user === undefined) return { status: 401, headers: { "www-authenticate": 'Basic realm="protected-area"' }, body: "Client must be authenticated to access this resource." };
    const p = req.path;
    if (p === "/rest/api/3/search/jql") {
      if (req.method === "GET") {
        const fields = req.query.get("fields");
        const maxResults = req.query.get("maxResults");
        return search(user, { jql: req.query.get("jql") ?? "", ...(fields !== null ? { fields: fields.split(",") } : {}), ...(maxResults !== null ? { maxResults: Number(maxResults) } : {}) });
      }
      if (req.method !== "POST") return { status: 405, body: "" };
      const b = parseJson(req);
      return b.ok ? search(user, b.value) : b.reply;
    }
    if (p === "/rest/api/3/issue" && req.method === "POST") {
      const b = parseJson(req);
      return b.ok ? createIssue(user, b.value) : b.reply;
    }
    const m = /^\/rest\/api\/3\/issue\/([^/]+)(\/comment|\/transitions)?$/.exec(p);
    if (m === null) return errors(404, ["null for uri: " + p]);
    const i = find(decodeURIComponent(m[1]!), user);
    if (i === undefined) return errors(404, ["Issue does not exist or you do not have permission to see it."]);
    if (m[2] === undefined && req.method === "GET") return { status: 200, body: issueJson(i, req.query.get("fields")?.split(",")) };
    if (m[2] === "/comment" && req.method === "POST") {
      if ((user.readOnlyProjects ?? []).includes(i.project)) return errors(403, ["You do not have the permission to comment on this issue."]);
      const b = parseJson(req);
      if (!b.ok) return b.reply;
      const problem = addComment(i, b.value["body"]);
      if (problem !== undefined) return errors(400, [], { comment: problem });
      event(i, "update");
      const c = i.comments[i.comments.length - 1]!;
      return { status: 201, body: { self: `${url}/rest/api/3/issue/${i.id}/comment/${c.id}`, id: c.id, body: c.body, created: c.created, updated: c.created, author: { emailAddress: user.email } } };
    }
    if (m[2] === "/transitions" && req.method === "GET") {
      return {
        status: 200,
        body: {
          expand: "transitions",
          transitions: available(i).map((t) => ({ id: t.id, name: t.name, to: statusJson(t.to), hasScreen: screens, isGlobal: false, isInitial: false, isAvailable: true, isConditional: false, isLooped: false })),
        },
      };
    }
    if (m[2] === "/transitions" && req.method === "POST") {
      const b = parseJson(req);
      return b.ok ? transition(user, i, b.value) : b.reply;
    }
    return { status: 405, body: "" };
  };

  const server = await startFakeServer(
    (req) => {
      const reply = handle(req);
      let body: unknown = req.text;
      try {
        body = req.text === "" ? undefined : JSON.parse(req.text);
      } catch {
        // kept as text
      }
      requests.push({ method: req.method, path: req.path, query: req.query.toString(), body, status: reply.status, user: authenticate(req)?.email });
      // Writes only: a search or a GET delivers nothing.
      if (reply.status >= 200 && reply.status < 300 && req.method === "POST" && req.path !== "/rest/api/3/search/jql") acceptedCount++;
      return reply;
    },
    (status) =>
      status === 401
        ? "Client must be authenticated to access this resource."
        : { errorMessages: [status === 429 ? "Rate limit exceeded." : status >= 500 ? "Internal server error." : `Injected HTTP ${status}.`], errors: {} },
  );
  url = server.url;

  return {
    url,
    issues,
    requests,
    adfProblems,
    issue: (key) => issues.find((i) => i.key === key),
    issuesFor: (fp) => issues.filter((i) => ((i.fields["labels"] as string[] | undefined) ?? []).includes(`${FP_LABEL}${fp}`)),
    setStatus(key, s) {
      const i = issues.find((x) => x.key === key);
      if (i !== undefined) i.status = s;
    },
    deleteIssue(key) {
      const idx = issues.findIndex((x) => x.key === key);
      if (idx >= 0) issues.splice(idx, 1);
    },
    failNext: (s, o) => server.failNext(s, o),
    hangNext: (path) => server.hangNext(path),
    dropNext: (path) => server.dropNext(path),
    received: (fp) => [...(events.get(fp) ?? [])],
    accepted: () => acceptedCount,
    reset() {
      issues.length = 0;
      requests.length = 0;
      adfProblems.length = 0;
      events.clear();
      counters.clear();
      acceptedCount = 0;
      server.clearFaults();
    },
    close: () => server.close(),
  };
}

interface JqlClause {
  readonly field: string;
  readonly value: string;
}

/** The JQL subset: `field = value` clauses joined by AND, then an optional ORDER BY created|key ASC|DESC. */
export function parseJql(jql: string): { clauses: JqlClause[]; order: "asc" | "desc" } | { error: string } {
  let rest = jql.trim();
  let order: "asc" | "desc" = "asc";
  const ob = /\s*\bORDER\s+BY\s+(created|key)(?:\s+(ASC|DESC))?\s*$/i.exec(rest);
  if (ob !== null) {
    order = (ob[2] ?? "ASC").toLowerCase() === "desc" ? "desc" : "asc";
    rest = rest.slice(0, ob.index);
  }
  if (rest.trim() === "") return { error: "Unbounded JQL queries are not allowed here. Please add a search restriction to your query." };
  const clauses: JqlClause[] = [];
  const re = /\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*(?:\bAND\b|$)/iy;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (m === null) return { error: `Error in the JQL Query: unexpected text at character ${pos + 1}.` };
    const field = m[1]!.toLowerCase();
    if (!["project", "labels", "status", "statuscategory"].includes(field)) return { error: `Field '${m[1]}' does not exist or you do not have permission to view it.` };
    const raw = m[2]!;
    clauses.push({ field, value: raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw });
    pos = re.lastIndex;
  }
  return { clauses, order };
}

const MARKS = new Set(["strong", "em", "strike", "code", "link", "underline", "textColor", "subsup"]);
const PANEL_TYPES = new Set(["info", "note", "warning", "error", "success"]);

/**
 * The ADF rules Jira enforces on what kubecano writes, checked independently:
 * node types and where they may appear, non-empty text nodes, marks (code
 * only with link), code blocks with plain text, lists and tables that are
 * not empty, heading levels and panel types.
 */
export function checkAdf(docValue: unknown): string[] {
  const problems: string[] = [];
  const d = docValue as { version?: unknown; type?: unknown; content?: unknown } | null;
  if (d === null || typeof d !== "object") return ["document is not an object"];
  if (d.type !== "doc" || d.version !== 1) problems.push("root must be {type: doc, version: 1}");
  if (!Array.isArray(d.content)) return [...problems, "doc.content must be an array"];

  const inline = (n: unknown, path: string): void => {
    const x = n as { type?: unknown; text?: unknown; marks?: unknown };
    if (x?.type === "hardBreak") return;
    if (x?.type !== "text") return void problems.push(`${path}: ${String(x?.type)} is not inline content`);
    if (typeof x.text !== "string" || x.text === "") problems.push(`${path}: text nodes must not be empty`);
    if (x.marks !== undefined) {
      if (!Array.isArray(x.marks)) return void problems.push(`${path}: marks must be an array`);
      const types = x.marks.map((m: { type?: unknown }) => m?.type);
      for (const t of types) if (!MARKS.has(String(t))) problems.push(`${path}: unknown mark ${String(t)}`);
      if (new Set(types).size !== types.length) problems.push(`${path}: duplicate marks`);
      if (types.includes("code") && types.some((t) => t !== "code" && t !== "link")) problems.push(`${path}: code mark combined with ${types.join("+")}`);
      for (const m of x.marks as { type?: unknown; attrs?: { href?: unknown } }[]) {
        if (m.type === "link" && (typeof m.attrs?.href !== "string" || m.attrs.href === "")) problems.push(`${path}: link without href`);
      }
    }
  };
  const inlines = (c: unknown, path: string): void => {
    if (c === undefined) return;
    if (!Array.isArray(c)) return void problems.push(`${path}: content must be an array`);
    c.forEach((n, i) => inline(n, `${path}[${i}]`));
  };
  const block = (n: unknown, path: string, allowed: readonly string[]): void => {
    const x = n as { type?: unknown; content?: unknown; attrs?: Record<string, unknown> } | null;
    const type = String(x?.type);
    if (!allowed.includes(type)) return void problems.push(`${path}: ${type} not allowed here`);
    const kids = (min: number): unknown[] => {
      if (!Array.isArray(x!.content) || x!.content.length < min) {
        problems.push(`${path}: ${type} needs at least ${min} child node${min === 1 ? "" : "s"}`);
        return [];
      }
      return x!.content;
    };
    switch (type) {
      case "paragraph":
        inlines(x!.content, `${path}.content`);
        break;
      case "heading": {
        const level = x!.attrs?.["level"];
        if (typeof level !== "number" || !Number.isInteger(level) || level < 1 || level > 6) problems.push(`${path}: heading level must be 1–6`);
        inlines(x!.content, `${path}.content`);
        break;
      }
      case "codeBlock":
        if (x!.content !== undefined) {
          if (!Array.isArray(x!.content)) problems.push(`${path}: content must be an array`);
          else
            x!.content.forEach((t: { type?: unknown; text?: unknown; marks?: unknown }, i: number) => {
              if (t?.type !== "text" || typeof t.text !== "string" || t.text === "") problems.push(`${path}[${i}]: code blocks hold non-empty text only`);
              if (t?.marks !== undefined) problems.push(`${path}[${i}]: code block text takes no marks`);
            });
        }
        break;
      case "bulletList":
      case "orderedList":
        kids(1).forEach((li, i) => block(li, `${path}.content[${i}]`, ["listItem"]));
        break;
      case "listItem": {
        const c = kids(1);
        c.forEach((k, i) => block(k, `${path}.content[${i}]`, i === 0 ? ["paragraph"] : ["paragraph", "bulletList", "orderedList", "codeBlock"]));
        break;
      }
      case "panel":
        if (!PANEL_TYPES.has(String(x!.attrs?.["panelType"]))) problems.push(`${path}: bad panelType`);
        kids(1).forEach((k, i) => block(k, `${path}.content[${i}]`, ["paragraph", "heading", "bulletList", "orderedList", "codeBlock", "rule"]));
        break;
      case "rule":
        if (x!.content !== undefined) problems.push(`${path}: rule has no content`);
        break;
      case "table": {
        const rows = kids(1);
        const widths = new Set<number>();
        rows.forEach((r, i) => {
          block(r, `${path}.content[${i}]`, ["tableRow"]);
          widths.add(Array.isArray((r as { content?: unknown }).content) ? ((r as { content: unknown[] }).content.length) : 0);
        });
        if (widths.size > 1) problems.push(`${path}: rows have different numbers of cells`);
        break;
      }
      case "tableRow":
        kids(1).forEach((c, i) => block(c, `${path}.content[${i}]`, ["tableHeader", "tableCell"]));
        break;
      case "tableHeader":
      case "tableCell":
        kids(1).forEach((c, i) => block(c, `${path}.content[${i}]`, ["paragraph", "heading", "bulletList", "orderedList", "codeBlock", "rule", "panel"]));
        break;
    }
  };
  d.content.forEach((n, i) => block(n, `content[${i}]`, ["paragraph", "heading", "codeBlock", "bulletList", "orderedList", "rule", "panel", "table", "blockquote"]));
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(JSON.stringify(docValue))) problems.push("lone UTF-16 surrogate");
  return problems;
}
