import type { Logger } from "./logger.js";

/**
 * Logs the first occurrence of a key at its level, then at most once per
 * window with how many were suppressed: a destination that rejects every
 * message must not write one error line per alert.
 */
export class LogOnce {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly now: () => number,
    private readonly windowMs = 10 * 60_000,
  ) {}

  log(log: Logger, level: "info" | "warn" | "error", key: string, fields: Record<string, unknown>, msg: string): void {
    const t = this.now();
    const s = this.seen.get(key);
    if (s !== undefined && t - s.at < this.windowMs) {
      s.suppressed++;
      log.debug(fields, msg);
      return;
    }
    const suppressed = s?.suppressed ?? 0;
    this.seen.set(key, { at: t, suppressed: 0 });
    log[level]({ ...fields, ...(suppressed > 0 ? { suppressedSinceLast: suppressed } : {}) }, msg);
  }
}
