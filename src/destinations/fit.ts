import type { Enrichment } from "../core/blocks.js";

/** Scales a renderer draws an enrichment at: whole, then fewer lines and rows. */
const SCALES = [1, 0.5, 0.2] as const;

export interface Fitted<T> {
  /** Units that fit, in order. */
  readonly units: T[];
  /** Units left out entirely. */
  readonly omitted: number;
  /** Units kept at a smaller scale. */
  readonly shrunk: number;
}

/**
 * Fills `room` with the enrichments' units in order, for renderers with a
 * size limit. `unitsAt(e, scale)` draws one enrichment as units (the same
 * number at every scale, each measured and kept or left out as a whole);
 * a unit too big at scale 1 is tried smaller before it is left out, and
 * later, smaller units still get their chance. Pure.
 */
export function fitEnrichments<T>(enrichments: readonly Enrichment[], unitsAt: (e: Enrichment, scale: number) => T[], room: number, cost: (unit: T) => number): Fitted<T> {
  const units: T[] = [];
  let left = room;
  let omitted = 0;
  let shrunk = 0;
  for (const e of enrichments) {
    const drawn = new Map<number, T[]>();
    const at = (scale: number): T[] => {
      let u = drawn.get(scale);
      if (u === undefined) drawn.set(scale, (u = unitsAt(e, scale)));
      return u;
    };
    at(1).forEach((_, i) => {
      for (const scale of SCALES) {
        const unit = at(scale)[i];
        if (unit === undefined) break;
        const c = cost(unit);
        if (c <= left) {
          units.push(unit);
          left -= c;
          if (scale !== 1) shrunk++;
          return;
        }
      }
      omitted++;
    });
  }
  return { units, omitted, shrunk };
}

/** The largest n in [0, max] for which `ok(n)` holds, for an `ok` that holds up to some n and not after. */
export function largest(max: number, ok: (n: number) => boolean): number {
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
