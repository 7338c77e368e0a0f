import type { Issue } from "../core/issue.js";
import { compilePatterns } from "../core/match.js";
import type { RouteConfig, RouteMatch } from "./schema.js";
import { compileWindow, type CompiledWindow } from "./window.js";

export interface RouteDecision {
  readonly route: string;
  readonly matched: boolean;
  /** Why it matched or not: "namespace "shop" does not match payments-*", "outside mon-fri 08:00-18:00 Europe/Warsaw (now Sat 10:05 ...)". */
  readonly why: string;
  readonly destinations: readonly string[];
}

export interface RoutingResult {
  readonly destinations: readonly string[];
  readonly decisions: readonly RouteDecision[];
  /** How the destinations were chosen, in one line. */
  readonly why: string;
}

interface Field {
  readonly name: string;
  test(issue: Issue): string | undefined;
}

/**
 * Routes are pure: Issue (+ the clock, for windows) → destination names,
 * with an explanation. Tried in order; the first match stops unless it has
 * `continue: true`; nothing matched → defaultDestinations (every destination
 * when unset).
 */
export class Router {
  private readonly routes: readonly CompiledRoute[];
  /**
   * Whether a RESOLVED Issue can be routed differently from its FIRING one:
   * only through time windows or status matchers. Otherwise nothing needs
   * remembering between the two.
   */
  readonly statusOrTimeDependent: boolean;

  constructor(
    routes: readonly RouteConfig[],
    private readonly defaults: readonly string[],
    private readonly defaultsExplicit: boolean,
  ) {
    this.routes = routes.map(compileRoute);
    this.statusOrTimeDependent = routes.some((r) => r.active !== undefined || r.mute !== undefined || r.match.status !== "all" || (r.exclude !== undefined && r.exclude.status !== "all"));
  }

  route(issue: Issue, at: Date = new Date()): RoutingResult {
    const decisions: RouteDecision[] = [];
    const chosen: string[] = [];
    let stopped: string | undefined;
    for (const r of this.routes) {
      if (stopped !== undefined) {
        decisions.push({ route: r.name, matched: false, why: `not tried: ${stopped} matched first`, destinations: r.destinations });
        continue;
      }
      const why = r.check(issue, at);
      if (why !== undefined) {
        decisions.push({ route: r.name, matched: false, why, destinations: r.destinations });
        continue;
      }
      decisions.push({ route: r.name, matched: true, why: r.description, destinations: r.destinations });
      for (const d of r.destinations) if (!chosen.includes(d)) chosen.push(d);
      if (!r.continue) stopped = r.name;
    }
    if (chosen.length > 0) {
      const names = decisions.filter((d) => d.matched).map((d) => d.route);
      return { destinations: chosen, decisions, why: `route${names.length > 1 ? "s" : ""} ${names.join(", ")}` };
    }
    const why =
      this.routes.length === 0
        ? this.defaultsExplicit
          ? "no routes configured: defaultDestinations"
          : "no routes configured: every destination"
        : this.defaultsExplicit
          ? "no route matched: defaultDestinations"
          : "no route matched and no defaultDestinations: every destination";
    return { destinations: this.defaults, decisions, why };
  }
}

interface CompiledRoute {
  readonly name: string;
  readonly destinations: readonly string[];
  readonly continue: boolean;
  readonly description: string;
  /** undefined when the route takes the Issue; else why not. */
  check(issue: Issue, at: Date): string | undefined;
}

function compileRoute(r: RouteConfig): CompiledRoute {
  const match = compileMatch(r.match);
  const exclude = r.exclude !== undefined ? compileMatch(r.exclude) : undefined;
  const active: CompiledWindow | undefined = r.active !== undefined ? compileWindow(r.active) : undefined;
  const mute: CompiledWindow | undefined = r.mute !== undefined ? compileWindow(r.mute) : undefined;
  const description = `matched ${match.description === "" ? "everything" : match.description}${exclude !== undefined ? `, not excluded (${exclude.description})` : ""}${active !== undefined ? `, inside ${active.description}` : ""}`;
  return {
    name: r.name,
    destinations: r.destinations,
    continue: r.continue,
    description,
    check(issue, at) {
      const miss = match.miss(issue);
      if (miss !== undefined) return miss;
      if (exclude !== undefined && exclude.miss(issue) === undefined) return `excluded: ${exclude.description}`;
      if (active !== undefined && !active.contains(at)) return `outside its active window ${active.description} (now ${active.localTime(at)})`;
      if (mute !== undefined && mute.contains(at)) return `muted: inside ${mute.description} (now ${mute.localTime(at)})`;
      return undefined;
    },
  };
}

function compileMatch(m: RouteMatch): { description: string; miss(issue: Issue): string | undefined } {
  const fields: Field[] = [];
  const parts: string[] = [];
  const add = (name: string, input: readonly string[] | undefined, value: (i: Issue) => string | undefined): void => {
    if (input === undefined) return;
    const p = compilePatterns(input);
    parts.push(`${name}=${p.source}`);
    fields.push({
      name,
      test: (i) => {
        const v = value(i);
        if (p.test(v)) return undefined;
        return v === undefined ? `${name} is not set (wanted ${p.source})` : `${name} ${JSON.stringify(v)} does not match ${p.source}`;
      },
    });
  };
  add("namespace", m.namespaces, (i) => i.subject.namespace ?? i.subject.labels["namespace"]);
  for (const [label, input] of Object.entries(m.labels ?? {})) add(`labels.${label}`, input, (i) => i.subject.labels[label]);
  add("severity", m.severity, (i) => i.severity);
  const names = [...(m.alert_names ?? []), ...(m.reasons ?? [])];
  add("alert_name", names.length > 0 ? names : undefined, (i) => i.aggregationKey);
  add("source", m.sources, (i) => i.source);
  add("type", m.types, (i) => i.type);
  if (m.status !== "all") {
    const want = m.status === "firing" ? "FIRING" : "RESOLVED";
    parts.push(`status=${m.status}`);
    fields.push({ name: "status", test: (i) => (i.status === want ? undefined : `status ${i.status.toLowerCase()} is not ${m.status}`) });
  }
  return {
    description: parts.join(" "),
    miss(issue) {
      for (const f of fields) {
        const why = f.test(issue);
        if (why !== undefined) return why;
      }
      return undefined;
    },
  };
}
