import { Agent, request, errors as undiciErrors } from "undici";
import { tracer } from "../observability/tracing.js";
import { DeliveryError, parseRetryAfter } from "./types.js";

/**
 * The one HTTP client destinations share: a keep-alive connection pool with
 * connect, header and body timeouts. Errors come back as DeliveryErrors whose
 * messages name the host and status, never the URL's path or query (incoming
 * webhook URLs carry their secret there).
 */
let sharedAgent: Agent | undefined;

export function httpAgent(): Agent {
  sharedAgent ??= new Agent({
    connect: { timeout: 10_000 },
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    connections: 32,
  });
  return sharedAgent;
}

export async function closeHttpAgent(): Promise<void> {
  const a = sharedAgent;
  sharedAgent = undefined;
  await a?.close();
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** At most 64 KiB of the body, as text. */
  readonly text: string;
}

export interface PostOptions {
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** POSTs a JSON body; resolves for any HTTP status, rejects (DeliveryError) only for transport failures. */
export function postJson(url: string, body: unknown, opts: PostOptions = {}): Promise<HttpResponse> {
  return requestJson("POST", url, body, opts);
}

/**
 * One HTTP request with an optional JSON body (a string is sent as is, for
 * callers that sign the exact bytes). Resolves for any status; rejects with
 * a DeliveryError only when no answer came.
 */
export async function requestJson(method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE", url: string, body: unknown, opts: PostOptions = {}): Promise<HttpResponse> {
  const target = safeTarget(url);
  const timeout = opts.timeoutMs ?? 10_000;
  const headers: Record<string, string> = { ...(body !== undefined ? { "content-type": "application/json" } : {}), accept: "application/json", "user-agent": "kubecano", ...opts.headers };
  // The delivery attempt's trace continues at the receiver (W3C traceparent), when tracing is on.
  tracer()?.inject(headers);
  try {
    const res = await request(url, {
      method,
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
      headers,
      dispatcher: httpAgent(),
      headersTimeout: timeout,
      bodyTimeout: timeout,
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    });
    const text = await readCapped(res.body, 64 * 1024);
    return { status: res.statusCode, headers: res.headers, text };
  } catch (e) {
    throw transportError(e, target, timeout);
  }
}

/** A DeliveryError for an HTTP status: 5xx, 408 and 429 are retryable, other 4xx are not. */
export function statusError(res: HttpResponse, what: string, hint?: string): DeliveryError {
  const retryAfter = header(res, "retry-after");
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  const detail = oneLine(res.text).slice(0, 200);
  return new DeliveryError(`${what} answered HTTP ${res.status}${detail !== "" ? `: ${detail}` : ""}`, {
    retryable,
    code: `http_${res.status}`,
    hint,
    retryAfterMs: parseRetryAfter(retryAfter),
  });
}

/** The body as JSON, or undefined when it is not JSON. */
export function jsonBody(res: HttpResponse): unknown {
  try {
    return JSON.parse(res.text) as unknown;
  } catch {
    return undefined;
  }
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** "https://hooks.slack.com" — what an error may say about where it was sending. */
export function safeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(invalid URL)";
  }
}

function transportError(e: unknown, target: string, timeoutMs: number): DeliveryError {
  const code = (e as { code?: unknown }).code;
  const name = (e as { name?: unknown }).name;
  if (e instanceof undiciErrors.HeadersTimeoutError || e instanceof undiciErrors.BodyTimeoutError || e instanceof undiciErrors.ConnectTimeoutError || name === "TimeoutError") {
    return new DeliveryError(`${target} did not answer within ${timeoutMs} ms`, { retryable: true, code: "timeout", maybeDelivered: true });
  }
  if (name === "AbortError") return new DeliveryError(`request to ${target} was aborted`, { retryable: true, code: "aborted", maybeDelivered: true });
  const c = typeof code === "string" ? code : "network_error";
  return new DeliveryError(`cannot reach ${target}: ${c}`, {
    retryable: true,
    code: c.toLowerCase(),
    hint: c === "ENOTFOUND" ? "check the host name in the URL" : undefined,
    // Refused or unresolvable: the request never left. A connection cut after it did may have been processed.
    maybeDelivered: c !== "ECONNREFUSED" && c !== "ENOTFOUND" && c !== "EAI_AGAIN",
  });
}

async function readCapped(body: AsyncIterable<Uint8Array> & { destroy?: () => void }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = Buffer.from(chunk);
    if (size + b.length > max) {
      chunks.push(b.subarray(0, max - size));
      body.destroy?.();
      break;
    }
    chunks.push(b);
    size += b.length;
  }
  return Buffer.concat(chunks).toString("utf8");
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
