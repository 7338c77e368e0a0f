import { compilePatterns, type CompiledPattern } from "../../core/match.js";
import type { Finding } from "./classifiers.js";

/**
 * Noise control: which findings may become Issues at all (namespaces,
 * reasons, the opt-out annotation), and how often (one Issue per workload
 * and reason per window; a resolution closes the window).
 */

export interface FilterSettings {
  readonly namespaces: readonly string[];
  readonly excludeNamespaces: readonly string[];
  readonly reasons: { readonly include: readonly string[]; readonly exclude: readonly string[] };
}

export type Rejection = "namespace" | "reason" | "ignored";

export class NoiseFilter {
  private readonly include: CompiledPattern | undefined;
  private readonly exclude: CompiledPattern | undefined;
  private readonly reasonsIn: CompiledPattern | undefined;
  private readonly reasonsOut: CompiledPattern | undefined;

  constructor(s: FilterSettings) {
    this.include = s.namespaces.length > 0 ? compilePatterns(s.namespaces) : undefined;
    this.exclude = s.excludeNamespaces.length > 0 ? compilePatterns(s.excludeNamespaces) : undefined;
    this.reasonsIn = s.reasons.include.length > 0 ? compilePatterns(s.reasons.include) : undefined;
    this.reasonsOut = s.reasons.exclude.length > 0 ? compilePatterns(s.reasons.exclude) : undefined;
  }

  /** Whether objects of this namespace are looked at (cluster-scoped objects, namespace undefined, always are). */
  namespaceWatched(namespace: string | undefined): boolean {
    if (namespace === undefined) return true;
    if (this.include !== undefined && !this.include.test(namespace)) return false;
    return this.exclude === undefined || !this.exclude.test(namespace);
  }

  /** Why a finding may not be reported, or undefined when it may. */
  rejects(f: Finding): Rejection | undefined {
    if (f.ignore) return "ignored";
    if (!this.namespaceWatched(f.workload.namespace ?? f.subject.namespace)) return "namespace";
    if (this.reasonsIn !== undefined && !this.reasonsIn.test(f.reason)) return "reason";
    if (this.reasonsOut !== undefined && this.reasonsOut.test(f.reason)) return "reason";
    return undefined;
  }
}

/** Namespace patterns that are plain names (no glob, regex or negation): those can be watched one by one. */
export function exactNamespaces(patterns: readonly string[]): string[] | undefined {
  if (patterns.length === 0) return undefined;
  const plain = patterns.every((p) => /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p));
  return plain ? [...new Set(patterns)] : undefined;
}

/** One reported incident: when its Issue was sent. Present until resolved (or forgotten, see MAX_ENTRIES). */
export interface LedgerEntry {
  readonly firedMs: number;
  /**
   * For incidents that resolve when their pods recover: the workload
   * ("ns/Kind/name") and reason, so a new leader can still resolve an
   * incident whose pods recovered while no one was watching.
   */
  readonly workload?: string | undefined;
  readonly reason?: string | undefined;
}

/**
 * Kept per ledger; past it the oldest entries go (an incident that old is not
 * resolved by kubecano). Bounds the Lease annotation to ~100 KB, well under
 * the 256 KB the API server allows for all annotations together.
 */
export const MAX_ENTRIES = 1_000;

/**
 * What has been reported, by fingerprint (workload + reason): the rate
 * limit. With leader election it lives in the Lease, so a new leader knows
 * what the old one sent.
 */
export class IncidentLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  private version = 0;

  constructor(private readonly windowMs: number) {}

  /** Replaces the contents (a new leader loading what the Lease holds). */
  load(entries: ReadonlyMap<string, LedgerEntry>): void {
    this.entries.clear();
    for (const [k, v] of entries) this.entries.set(k, v);
    this.version += 1;
  }

  /** Changes with every decision that altered the ledger: persist when it moved. */
  get revision(): number {
    return this.version;
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** True: report it (the window starts now). False: an Issue for this key went out within the window. */
  fire(key: string, now: number, about?: { workload: string; reason: string }): boolean {
    const e = this.entries.get(key);
    if (e !== undefined && now - e.firedMs < this.windowMs) return false;
    this.entries.delete(key);
    this.entries.set(key, about !== undefined ? { firedMs: now, workload: about.workload, reason: about.reason } : { firedMs: now });
    this.version += 1;
    while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    return true;
  }

  /** True: report the resolution (an Issue for this key is open); the window closes. */
  resolve(key: string): boolean {
    if (!this.entries.delete(key)) return false;
    this.version += 1;
    return true;
  }

  snapshot(): Map<string, LedgerEntry> {
    return new Map(this.entries);
  }

  entriesView(): ReadonlyMap<string, LedgerEntry> {
    return this.entries;
  }
}

/**
 * The ledger as a Lease annotation: {"v":1,"e":{"<fingerprint>": <fired, epoch s>
 * | [<fired>, "<ns/Kind/name>", "<reason>"]}}.
 */
export function encodeLedger(entries: ReadonlyMap<string, LedgerEntry>): string {
  const e: Record<string, number | [number, string, string]> = {};
  for (const [k, v] of entries) {
    const t = Math.floor(v.firedMs / 1000);
    e[k] = v.workload !== undefined && v.reason !== undefined ? [t, v.workload, v.reason] : t;
  }
  return JSON.stringify({ v: 1, e });
}

/** Reads what encodeLedger wrote; anything unreadable is an empty ledger (never an error: the Lease is shared). */
export function decodeLedger(text: string | undefined): Map<string, LedgerEntry> {
  const out = new Map<string, LedgerEntry>();
  if (text === undefined || text === "") return out;
  try {
    const o = JSON.parse(text) as { v?: unknown; e?: unknown };
    if (o.v !== 1 || o.e === null || typeof o.e !== "object") return out;
    const list: [string, LedgerEntry][] = [];
    for (const [k, v] of Object.entries(o.e as Record<string, unknown>)) {
      if (typeof v === "number" && Number.isFinite(v)) list.push([k, { firedMs: v * 1000 }]);
      else if (Array.isArray(v) && typeof v[0] === "number" && Number.isFinite(v[0]) && typeof v[1] === "string" && typeof v[2] === "string") list.push([k, { firedMs: v[0] * 1000, workload: v[1], reason: v[2] }]);
    }
    list.sort((a, b) => a[1].firedMs - b[1].firedMs);
    for (const [k, entry] of list.slice(-MAX_ENTRIES)) out.set(k, entry);
  } catch {
    // a foreign or damaged annotation: start empty
  }
  return out;
}
