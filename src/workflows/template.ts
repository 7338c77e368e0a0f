import type { Issue } from "../core/issue.js";

/**
 * A deliberately small template language for workflow texts:
 *   {{ labels.team }}  {{ annotations.summary }}  {{ subject.name }}
 *   {{ labels.team | default "none" }}  {{ title | upper }}  {{ labels.pod | urlencode }}
 * Only dotted lookups into the Issue's data and a fixed set of filters: no
 * code runs, nothing outside the data can be reached, and a missing value is
 * an empty string. `{{{` is not special; `\{{` writes a literal `{{`.
 */

export type Filter = "default" | "upper" | "lower" | "urlencode" | "trim" | "json";
const FILTERS = new Set<string>(["default", "upper", "lower", "urlencode", "trim", "json"]);

interface Segment {
  readonly path: readonly string[];
  readonly filters: readonly { name: Filter; arg?: string }[];
}

export interface CompiledTemplate {
  readonly source: string;
  render(data: Readonly<Record<string, unknown>>): string;
}

export class TemplateError extends Error {
  constructor(template: string, reason: string) {
    super(`invalid template ${JSON.stringify(template.length > 80 ? `${template.slice(0, 79)}…` : template)}: ${reason}`);
    this.name = "TemplateError";
  }
}

const EXPR = /\\\{\{|\{\{\s*([^}]*?)\s*\}\}/g;

export function compileTemplate(source: string): CompiledTemplate {
  const parts: (string | Segment)[] = [];
  let last = 0;
  for (const m of source.matchAll(EXPR)) {
    parts.push(source.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[0] === "\\{{") {
      parts.push("{{");
      continue;
    }
    parts.push(parseExpression(m[1] ?? "", source));
  }
  parts.push(source.slice(last));
  if (/\{\{/.test(parts.filter((p): p is string => typeof p === "string").join("").replace(/\{\{(?=[^]*$)/, "{{"))) {
    // An unterminated {{ is most likely a typo.
    const rest = source.slice(last);
    if (rest.includes("{{")) throw new TemplateError(source, "unterminated {{");
  }
  return {
    source,
    render(data) {
      let out = "";
      for (const p of parts) out += typeof p === "string" ? p : evaluate(p, data);
      return out;
    },
  };
}

function parseExpression(expr: string, source: string): Segment {
  const pieces = splitPipes(expr);
  const head = pieces.shift()?.trim() ?? "";
  if (!/^[A-Za-z_][\w-]*(\.[A-Za-z0-9_][\w./-]*)*$/.test(head) && !/^[A-Za-z_][\w-]*(\[".*"\])+$/.test(head)) {
    throw new TemplateError(source, `"${head}" is not a field path (write e.g. labels.team)`);
  }
  const path = parsePath(head);
  const filters = pieces.map((p) => {
    const m = /^\s*([a-z]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*$/.exec(p);
    if (m === null || !FILTERS.has(m[1]!)) throw new TemplateError(source, `unknown filter "${p.trim()}" (use ${[...FILTERS].join(", ")})`);
    return { name: m[1] as Filter, ...(m[2] !== undefined ? { arg: m[2].replace(/\\(.)/g, "$1") } : {}) };
  });
  return { path, filters };
}

function splitPipes(expr: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inStr = false;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i]!;
    if (ch === '"' && expr[i - 1] !== "\\") inStr = !inStr;
    if (ch === "|" && !inStr) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** labels.team → ["labels","team"]; labels["app.kubernetes.io/name"] → ["labels","app.kubernetes.io/name"]. */
function parsePath(head: string): string[] {
  const bracket = /^([A-Za-z_][\w-]*)((?:\[".*?"\])+)$/.exec(head);
  if (bracket !== null) return [bracket[1]!, ...[...bracket[2]!.matchAll(/\["(.*?)"\]/g)].map((m) => m[1]!)];
  const [first, ...rest] = head.split(".");
  // Label keys contain dots (app.kubernetes.io/name): after labels/annotations the rest is one key.
  if ((first === "labels" || first === "annotations") && rest.length > 0) return [first, rest.join(".")];
  if (first === "subject" && (rest[0] === "labels" || rest[0] === "annotations") && rest.length > 1) return [first, rest[0], rest.slice(1).join(".")];
  return [first!, ...rest];
}

function evaluate(seg: Segment, data: Readonly<Record<string, unknown>>): string {
  let v: unknown = data;
  for (const key of seg.path) {
    if (v === null || typeof v !== "object" || !Object.prototype.hasOwnProperty.call(v, key)) {
      v = undefined;
      break;
    }
    v = (v as Record<string, unknown>)[key];
  }
  let s = v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  for (const f of seg.filters) {
    switch (f.name) {
      case "default":
        if (s === "") s = f.arg ?? "";
        break;
      case "upper":
        s = s.toUpperCase();
        break;
      case "lower":
        s = s.toLowerCase();
        break;
      case "trim":
        s = s.trim();
        break;
      case "urlencode":
        s = encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, "\uFFFD"));
        break;
      case "json":
        s = JSON.stringify(s);
        break;
    }
  }
  return s;
}

/** The data a template sees: the Issue's fields, with labels/annotations at the top level for brevity. */
export function templateData(issue: Issue): Record<string, unknown> {
  return {
    ...issue,
    labels: issue.subject.labels,
    annotations: issue.subject.annotations,
    namespace: issue.subject.namespace ?? "",
    alertname: issue.aggregationKey,
  };
}

/** For config schemas: the error of a template, or undefined. */
export function templateProblem(source: string): string | undefined {
  try {
    compileTemplate(source);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
