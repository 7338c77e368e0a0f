import type { Issue } from "../core/issue.js";
import type { Logger } from "../observability/logger.js";

/**
 * A destination renders an Issue (pure) and sends it (I/O). `send` resolves
 * once the destination has accepted the Issue, or rejects with a
 * DeliveryError that says whether trying again can help.
 */
export interface Destination {
  readonly name: string;
  readonly type: string;
  /** What `send` would send, without sending it (`replay --dry-run`). Pure. */
  render(issue: Issue): Rendered;
  /**
   * The destination tracks incidents and resolves them (PagerDuty, Opsgenie,
   * Jira): `test-destination` sends its test incident resolved right after.
   */
  readonly resolvesIncidents?: boolean;
  /**
   * Sends the delivery engine runs at once for this destination, in place of
   * `delivery.concurrency` (which spares remote services). For a local
   * destination whose sends wait for nothing remote.
   */
  readonly concurrency?: number;
  send(issue: Issue, ctx: SendContext): Promise<SendResult>;
  /**
   * For a delivery whose earlier attempt may have reached the destination
   * (the process died between sending and recording it): look for what that
   * attempt created, so it is not sent twice. Resolves undefined when nothing
   * is found. Destinations that cannot look leave this out; the engine then
   * sends again (at-least-once).
   */
  findExisting?(issue: Issue, ctx: FindContext): Promise<SendResult | undefined>;
  /** Releases sockets and timers. Called once at shutdown. */
  close?(): Promise<void>;
}

export interface SendContext {
  /** Aborted when the delivery times out or the process shuts down. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly log: Logger;
  /**
   * The caller reschedules a delivery that throws a DeliveryError with
   * `defer` (the delivery engine). Without it (one-shot commands) a
   * destination that paces itself waits instead of deferring.
   */
  readonly deferrable?: boolean;
}

/** A destination's payload for an Issue: JSON it would post, or text it would print. */
export type Rendered = { readonly kind: "json"; readonly body: unknown } | { readonly kind: "text"; readonly body: string };

export interface FindContext {
  /** When the in-doubt attempt started (epoch ms): nothing older needs looking at. */
  readonly since: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** As SendContext.deferrable. */
  readonly deferrable?: boolean;
}

export interface SendResult {
  /** The destination's own id for what was created (Slack ts, PagerDuty dedup key...). */
  readonly remoteId?: string;
  /** One line for people: "posted to #alerts (ts 1732.12)". */
  readonly detail?: string;
}

/**
 * A failed send. `retryable` is the contract with the delivery queue: true
 * means "the same request may succeed later" (network, timeout, 5xx, 429).
 * Messages never contain secrets (tokens, webhook URLs): destinations build
 * them from status codes and remote error codes only.
 */
export class DeliveryError extends Error {
  readonly retryable: boolean;
  /** The remote error code (channel_not_found, http_503, timeout...). */
  readonly code: string;
  readonly hint: string | undefined;
  /** The destination asked us to wait this long (Retry-After). */
  readonly retryAfterMs: number | undefined;
  /**
   * The request may have been processed although no answer came (a timeout,
   * a connection cut mid-request): the next attempt should look before
   * sending again, where the destination can.
   */
  readonly maybeDelivered: boolean;
  /**
   * Not a failure: the destination paces itself and asks to be called again
   * in `retryAfterMs` (its next free slot). The engine reschedules the
   * delivery without counting an attempt or logging a warning. A destination
   * defers only when this attempt sent nothing it has not recorded itself
   * (in its DestinationState), so the delivery's in-doubt state stays as it
   * was before the attempt. Callers that cannot reschedule treat it as a
   * retryable error (set `retryable` too).
   */
  readonly defer: boolean;
  constructor(
    message: string,
    opts: {
      retryable: boolean;
      code: string;
      hint?: string | undefined;
      retryAfterMs?: number | undefined;
      maybeDelivered?: boolean | undefined;
      defer?: boolean | undefined;
    },
  ) {
    super(message);
    this.name = "DeliveryError";
    this.retryable = opts.retryable;
    this.code = opts.code;
    this.hint = opts.hint;
    this.retryAfterMs = opts.retryAfterMs;
    this.maybeDelivered = opts.maybeDelivered ?? false;
    this.defer = opts.defer ?? false;
  }
}

/** Small durable state a destination keeps between runs (thread maps, resolved ids). */
export interface DestinationState {
  getState(namespace: string, key: string): string | undefined;
  setState(namespace: string, key: string, value: string | undefined): void;
}

export interface DestinationDeps {
  readonly log: Logger;
  /** The delivery store's key/value state; absent in one-shot commands. */
  readonly state?: DestinationState | undefined;
  /** Where terminal destinations write; stdout unless a test says otherwise. */
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  /** The config file's directory (the cwd without one): relative paths in params are resolved against it. */
  readonly configDir?: string | undefined;
}

/** Parses a Retry-After header value (seconds or an HTTP date) to ms. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return Math.min(secs * 1000, 3_600_000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.min(Math.max(0, at - now), 3_600_000) : undefined;
}
