import type { z } from "zod";
import { isWebhookPayload, webhookPayloadSchema, type WebhookPayload } from "./schema.js";

export type PayloadErrorKind = "encoding" | "json" | "schema";

/**
 * Why a webhook body was refused. `message` is one line that says what is
 * wrong and where (a JSON line/column or a field path), fit for an HTTP 400
 * body and a log line. It never echoes large parts of the input.
 */
export class PayloadError extends Error {
  readonly kind: PayloadErrorKind;
  constructor(kind: PayloadErrorKind, message: string) {
    super(message);
    this.name = "PayloadError";
    this.kind = kind;
  }
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: PayloadError };

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Decodes strict UTF-8; invalid sequences are an error, not silently replaced. */
export function decodeUtf8(body: Uint8Array): ParseResult<string> {
  try {
    return { ok: true, value: utf8.decode(body) };
  } catch {
    return { ok: false, error: new PayloadError("encoding", `request body is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(body)})`) };
  }
}

/** JSON.parse with the failure position turned into line and column. */
export function parseJson(text: string): ParseResult<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    if (e instanceof RangeError) {
      return { ok: false, error: new PayloadError("json", "invalid JSON: nested too deeply") };
    }
    const raw = e instanceof Error ? e.message : String(e);
    return { ok: false, error: new PayloadError("json", describeJsonError(text, raw)) };
  }
}

/** Full path from bytes to a validated payload. Never throws. */
export function parseWebhookBody(body: Uint8Array | string): ParseResult<WebhookPayload> {
  let text: string;
  if (typeof body === "string") {
    text = body;
  } else {
    const decoded = decodeUtf8(body);
    if (!decoded.ok) return decoded;
    text = decoded.value;
  }
  if (text.trim() === "") return { ok: false, error: new PayloadError("json", "request body is empty: expected an Alertmanager webhook JSON object") };
  const json = parseJson(text);
  if (!json.ok) return json;
  return validatePayload(json.value);
}

export function validatePayload(value: unknown): ParseResult<WebhookPayload> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, error: new PayloadError("schema", `expected a JSON object with an "alerts" array, got ${jsonType(value)}`) };
  }
  if (isWebhookPayload(value)) return { ok: true, value };
  const r = webhookPayloadSchema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, error: new PayloadError("schema", formatZodIssues(r.error.issues)) };
}

/** "alerts[0].labels.severity: expected string, received number" (+ "and N more problems"). */
export function formatZodIssues(issues: readonly z.core.$ZodIssue[], max = 3): string {
  const parts = issues.slice(0, max).map((i) => {
    const path = formatPath(i.path);
    return `${path === "" ? "(root)" : path}: ${cleanZodMessage(i)}`;
  });
  const more = issues.length > max ? `; and ${issues.length - max} more problem${issues.length - max === 1 ? "" : "s"}` : "";
  return parts.join("; ") + more;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else {
      const s = String(p);
      out += /^[A-Za-z_$][\w$-]*$/.test(s) ? (out === "" ? s : `.${s}`) : `[${JSON.stringify(truncate(s, 60))}]`;
    }
  }
  return out;
}

function cleanZodMessage(i: z.core.$ZodIssue): string {
  // zod 4 says "Invalid input: expected string, received number"; the prefix adds nothing.
  const msg = i.message.replace(/^Invalid input: /, "");
  if (i.code === "invalid_type" && /received undefined$/.test(msg)) return `is required (${msg.replace(/, received undefined$/, "")})`;
  return truncate(msg, 200);
}

function describeJsonError(text: string, raw: string): string {
  const posMatch = /at position (\d+)/.exec(raw);
  let pos = posMatch?.[1] !== undefined ? Number(posMatch[1]) : undefined;
  if (pos === undefined && /Unexpected end of JSON input|Unterminated/.test(raw)) pos = text.length;
  // V8 gives no position for "Unexpected token" (and quotes the input unescaped): find the offending character ourselves.
  if (pos === undefined) pos = jsonErrorOffset(text);
  if (pos !== undefined && pos < text.length && raw.startsWith("Unexpected token")) {
    const cp = text.codePointAt(pos)!;
    raw = `Unexpected token ${cp > 0x20 && cp < 0x7f ? JSON.stringify(String.fromCodePoint(cp)) : `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`}`;
  }
  // V8 messages quote the input ('..."{"a": x}" is not valid JSON'); keep only the reason.
  let reason = raw.replace(/,? ?"(?:[^"\\]|\\.)*"\.{0,3} is not valid JSON$/, "").replace(/ (?:in JSON )?at position \d+.*$/, "");
  reason = truncate(reason.replace(/\s+/g, " ").trim(), 120);
  if (pos === undefined) return `invalid JSON: ${reason}`;
  const { line, column } = lineColumn(text, pos);
  return `invalid JSON at line ${line} column ${column}: ${reason}`;
}

/**
 * Offset of the first syntax error in `text` (its length when the text ends
 * too early), or undefined when it is valid. Only called after JSON.parse
 * failed; iterative, so deep nesting cannot overflow the stack.
 */
export function jsonErrorOffset(text: string): number | undefined {
  const n = text.length;
  const stack: number[] = [];
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  let i = 0;
  const ws = (): void => {
    for (let c = text.charCodeAt(i); c === 32 || c === 9 || c === 10 || c === 13; c = text.charCodeAt(++i));
  };
  /** Advances past a string starting at i; false at the first bad character. */
  const str = (): boolean => {
    if (text.charCodeAt(i) !== 34) return false;
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 92) {
        const e = text[i + 1];
        if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 5;
        else if (e !== undefined && e !== "u" && '"\\/bfnrt'.includes(e)) i++;
        else {
          i++;
          return false;
        }
      }
    }
    return false;
  };
  for (;;) {
    // Expecting a value.
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      stack.push(c.charCodeAt(0));
      i++;
      ws();
      if (text[i] === (c === "{" ? "}" : "]")) {
        stack.pop();
        i++;
      } else if (c === "{") {
        if (!str()) return Math.min(i, n);
        ws();
        if (text[i] !== ":") return i;
        i++;
        continue;
      } else continue;
    } else if (c === '"') {
      if (!str()) return Math.min(i, n);
    } else if (c === "t" || c === "f" || c === "n") {
      const word = c === "t" ? "true" : c === "f" ? "false" : "null";
      for (const w of word) {
        if (text[i] !== w) return i;
        i++;
      }
    } else {
      NUMBER.lastIndex = i;
      if (c === undefined || !NUMBER.test(text)) return i === n ? n : c === "-" ? i + 1 : i;
      i = NUMBER.lastIndex;
    }
    // After a value: close containers, or find the next element.
    for (;;) {
      ws();
      const top = stack[stack.length - 1];
      if (top === undefined) return i < n ? i : undefined;
      const d = text[i];
      if (d === (top === 123 ? "}" : "]")) {
        stack.pop();
        i++;
        continue;
      }
      if (d !== ",") return i;
      i++;
      if (top === 123) {
        ws();
        if (!str()) return Math.min(i, n);
        ws();
        if (text[i] !== ":") return i;
        i++;
      }
      break;
    }
  }
}

export function lineColumn(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(pos, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** Offset of the first byte that breaks UTF-8, for the error message. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) n = 2;
    else if (c >= 0xf0 && c <= 0xf4) n = 3;
    else return i;
    if (i + n >= b.length && n > 0) return i;
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k]!;
      if ((cc & 0xc0) !== 0x80) return i;
    }
    // Overlongs, surrogates and > U+10FFFF.
    if (n === 2 && ((c === 0xe0 && b[i + 1]! < 0xa0) || (c === 0xed && b[i + 1]! > 0x9f))) return i;
    if (n === 3 && ((c === 0xf0 && b[i + 1]! < 0x90) || (c === 0xf4 && b[i + 1]! > 0x8f))) return i;
    i += n + 1;
  }
  return b.length;
}
