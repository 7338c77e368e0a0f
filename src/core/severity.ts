/** Issue severities, most to least urgent. */
export const SEVERITIES = ["HIGH", "LOW", "INFO", "DEBUG"] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * Alertmanager `severity` label values and the Issue severity they map to.
 * Anything not listed maps to INFO: an unknown severity should be seen, not paged on.
 */
export const DEFAULT_SEVERITY_MAP: Readonly<Record<string, Severity>> = {
  critical: "HIGH",
  high: "HIGH",
  error: "HIGH",
  page: "HIGH",
  warning: "LOW",
  warn: "LOW",
  low: "LOW",
  info: "INFO",
  information: "INFO",
  none: "INFO",
  debug: "DEBUG",
};

/**
 * Maps a label value to a Severity. `overrides` (from config `severityMap`)
 * take precedence; matching is case-insensitive and ignores surrounding spaces.
 */
export function mapSeverity(
  label: string | undefined,
  overrides: Readonly<Record<string, Severity>> = NO_OVERRIDES,
): Severity {
  if (label === undefined) return "INFO";
  const key = label.trim().toLowerCase();
  const found = normalisedOverrides(overrides).get(key);
  if (found !== undefined) return found;
  // Own keys only: "constructor" or "__proto__" must not find Object.prototype's members.
  return Object.hasOwn(DEFAULT_SEVERITY_MAP, key) ? DEFAULT_SEVERITY_MAP[key]! : "INFO";
}

const NO_OVERRIDES: Readonly<Record<string, Severity>> = Object.freeze({});
const EMPTY_OVERRIDES: ReadonlyMap<string, Severity> = new Map();
const normalised = new WeakMap<object, ReadonlyMap<string, Severity>>();

/** The overrides by trimmed, lower-cased key, the first of equal keys winning; made once per (config) object. */
function normalisedOverrides(overrides: Readonly<Record<string, Severity>>): ReadonlyMap<string, Severity> {
  let m = normalised.get(overrides);
  if (m === undefined) {
    const built = new Map<string, Severity>();
    for (const [k, v] of Object.entries(overrides)) {
      const nk = k.trim().toLowerCase();
      if (!built.has(nk)) built.set(nk, v);
    }
    m = built.size === 0 ? EMPTY_OVERRIDES : built;
    normalised.set(overrides, m);
  }
  return m;
}

/** Lower is more urgent: HIGH=0 ... DEBUG=3. */
export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export function isSeverity(v: unknown): v is Severity {
  return typeof v === "string" && (SEVERITIES as readonly string[]).includes(v);
}
