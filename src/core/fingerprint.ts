import { createHash } from "node:crypto";
import type { Subject } from "./subject.js";

/**
 * Stable identity of an Issue across repeats, for sources without one of
 * their own (Alertmanager provides its own fingerprint and that one is used).
 * Two Issues with the same source, subject and aggregation key are the same
 * incident; 16 hex characters like Alertmanager's.
 */
export function computeFingerprint(
  source: string,
  subject: Pick<Subject, "kind" | "name" | "namespace">,
  aggregationKey: string,
): string {
  const h = createHash("sha256");
  // NUL separators: no field value can forge another field's boundary.
  h.update([source, subject.kind, subject.namespace ?? "", subject.name, aggregationKey].join("\0"));
  return h.digest("hex").slice(0, 16);
}
