import type { Config } from "./config/schema.js";
import type { Issue } from "./core/issue.js";
import type { DeliveryEngine } from "./delivery/engine.js";
import { BacklogFullError, StoreUnavailableError, type AcceptResult } from "./delivery/store.js";
import type { Logger } from "./observability/logger.js";
import type { Metrics } from "./observability/metrics.js";
import { alertmanagerToIssues } from "./sources/alertmanager/to-issues.js";
import { parseWebhookBody, PayloadError } from "./sources/alertmanager/parse.js";

/** What happened to one webhook request; the HTTP layer maps it to a status code. */
export type IngestOutcome =
  | { readonly kind: "accepted"; readonly alerts: number; readonly issues: number; readonly deliveries: number; readonly duplicates: number }
  | { readonly kind: "invalid"; readonly error: PayloadError }
  | { readonly kind: "unavailable"; readonly reason: "backlog_full" | "store_unavailable"; readonly message: string; readonly retryAfterSeconds: number };

/**
 * The data path from a source to the delivery engine:
 * raw input → Issues (source conversion) → delivery. Workflows and routing
 * slot in between in later stages; the HTTP server knows none of this.
 */
export class Pipeline {
  constructor(
    private readonly deps: {
      readonly config: Config;
      readonly engine: DeliveryEngine;
      readonly log: Logger;
      readonly metrics?: Metrics | undefined;
    },
  ) {}

  /** Parses, converts and queues one Alertmanager webhook body. Never throws for bad input. */
  ingestAlertmanager(body: Uint8Array | string): IngestOutcome {
    const parsed = parseWebhookBody(body);
    if (!parsed.ok) return { kind: "invalid", error: parsed.error };
    const payload = parsed.value;
    const issues = alertmanagerToIssues(payload, { clusterName: this.deps.config.clusterName, severityMap: this.deps.config.severityMap });
    const outcome = this.submit(issues);
    if (outcome.kind === "accepted") this.deps.metrics?.alertsReceived.inc({ source: "alertmanager" }, payload.alerts.length);
    return outcome.kind === "accepted" ? { ...outcome, alerts: payload.alerts.length } : outcome;
  }

  /** Queues Issues from any source. Refuses (never drops) when the backlog or store cannot take them. */
  submit(issues: readonly Issue[]): Exclude<IngestOutcome, { kind: "invalid" }> {
    let result: AcceptResult;
    try {
      result = this.deps.engine.submit(issues);
    } catch (e) {
      if (e instanceof BacklogFullError) {
        return { kind: "unavailable", reason: "backlog_full", message: `${e.message}; retry later`, retryAfterSeconds: 30 };
      }
      if (e instanceof StoreUnavailableError) {
        return { kind: "unavailable", reason: "store_unavailable", message: `cannot store alerts: ${e.message}`, retryAfterSeconds: 30 };
      }
      throw e;
    }
    return { kind: "accepted", alerts: issues.length, issues: result.issues, deliveries: result.deliveries, duplicates: result.duplicates };
  }
}
