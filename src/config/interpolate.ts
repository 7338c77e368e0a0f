import { formatPath } from "../sources/alertmanager/parse.js";

/**
 * Expands `${NAME}` and `${NAME:-fallback}` in every string of a parsed
 * config; `$${` is a literal `${`. Contract: a variable that is not set (and
 * has no fallback) is reported with the key path that referenced it; every
 * missing variable is reported at once, not only the first.
 */
export interface InterpolationProblem {
  readonly path: string;
  readonly variable: string;
}

export function interpolateEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
): { value: unknown; problems: InterpolationProblem[] } {
  const problems: InterpolationProblem[] = [];
  const walk = (v: unknown, path: PropertyKey[]): unknown => {
    if (typeof v === "string") return expand(v, env, (variable) => problems.push({ path: formatPath(path), variable }));
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...path, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, []), problems };
}

const PLACEHOLDER = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function expand(s: string, env: NodeJS.ProcessEnv, missing: (name: string) => void): string {
  if (!s.includes("${")) return s;
  return s.replace(PLACEHOLDER, (match: string, name: string | undefined, fallback: string | undefined) => {
    if (match === "$${") return "${";
    const v = env[name!];
    if (v !== undefined && v !== "") return v;
    if (fallback !== undefined) return fallback;
    missing(name!);
    return "";
  });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}
