/**
 * String patterns shared by workflow triggers and routes. A pattern is
 * - an exact value: `KubePodCrashLooping`
 * - a glob with `*` and `?`: `Kube*`, `payments-*`
 * - a regular expression between slashes, anchored by the author: `/^Kube.*Crash/i`
 * and any of them may start with `!=` to negate it: `!=kube-system`, `!=/^test-/`.
 * A list of patterns matches when any of them does (negations: when none of the
 * negated ones does and, if there are positive ones, one of those does).
 */
export type PatternInput = string | readonly string[];

export interface CompiledPattern {
  readonly source: string;
  test(value: string | undefined): boolean;
}

export class PatternError extends Error {
  constructor(pattern: string, reason: string) {
    super(`invalid pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = "PatternError";
  }
}

/** Compiles one pattern; throws PatternError for a bad regex. */
export function compilePattern(pattern: string): CompiledPattern {
  const negated = pattern.startsWith("!=");
  const body = negated ? pattern.slice(2) : pattern;
  const test = compileBody(body, pattern);
  return {
    source: pattern,
    test: negated ? (v) => !test(v) : test,
  };
}

/** An exact pattern (no `!=`, glob or regex): its value, else undefined. */
function exactValue(pattern: string): string | undefined {
  if (pattern.startsWith("!=") || /^\/.*\/[a-z]*$/s.test(pattern) || pattern.includes("*") || pattern.includes("?")) return undefined;
  return pattern;
}

function compileBody(body: string, original: string): (v: string | undefined) => boolean {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(body);
  if (re !== null) {
    const flags = re[2]!;
    if (/[^imsu]/.test(flags)) throw new PatternError(original, `unsupported regex flag in "${flags}" (use i, m, s or u)`);
    let r: RegExp;
    try {
      r = new RegExp(re[1]!, flags);
    } catch (e) {
      throw new PatternError(original, e instanceof Error ? e.message : String(e));
    }
    return (v) => v !== undefined && r.test(v);
  }
  if (body.includes("*") || body.includes("?")) {
    const r = new RegExp(`^${body.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "s");
    return (v) => v !== undefined && r.test(v);
  }
  return (v) => v === body;
}

/** Compiles a pattern or a list of them into one predicate (see the module comment). */
export function compilePatterns(input: PatternInput): CompiledPattern {
  const list = typeof input === "string" ? [input] : [...input];
  const compiled = list.map(compilePattern);
  const source = list.length === 1 ? list[0]! : `[${list.join(", ")}]`;
  // Triggers and routes test every Issue: one pattern is its own test, and a list of exact values is a set.
  if (compiled.length === 1) return { source, test: compiled[0]!.test };
  const exact = list.map(exactValue);
  if (exact.length > 0 && exact.every((e) => e !== undefined)) {
    const values = new Set(exact as string[]);
    return { source, test: (v) => v !== undefined && values.has(v) };
  }
  const positives = compiled.filter((p) => !p.source.startsWith("!="));
  const negatives = compiled.filter((p) => p.source.startsWith("!="));
  return {
    source,
    test: (v) => {
      for (const n of negatives) if (!n.test(v)) return false;
      if (positives.length === 0) return true;
      for (const p of positives) if (p.test(v)) return true;
      return false;
    },
  };
}

/** Validates a pattern for a config schema; returns the error text or undefined. */
export function patternProblem(pattern: string): string | undefined {
  try {
    compilePattern(pattern);
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
