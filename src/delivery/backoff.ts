export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Delay before attempt `attempt + 1` after `attempt` failures: exponential
 * from initialDelay, capped at maxDelay, with "equal jitter" (between half
 * and all of it) so that many failed deliveries do not retry in lockstep.
 * A Retry-After from the destination is a floor.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const exp = policy.initialDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 30));
  const capped = Math.min(policy.maxDelayMs, exp);
  const jittered = capped / 2 + random() * (capped / 2);
  return Math.max(Math.round(jittered), retryAfterMs ?? 0);
}
