import type { Enrichment, Link } from "../core/blocks.js";
import type { Issue } from "../core/issue.js";
import { errorMessage } from "../errors.js";
import type { KubeReader } from "../kube/client.js";
import { KubeError } from "../kube/client.js";
import type { Logger } from "../observability/logger.js";
import { tracer } from "../observability/tracing.js";
import { BUILTIN_ACTIONS } from "./actions/registry.js";
import { loadCustomAction } from "./custom.js";
import { DEFAULT_WORKFLOWS } from "./defaults.js";
import type { WorkflowConfig } from "./schema.js";
import { compileTrigger, type CompiledTrigger } from "./triggers.js";
import { ActionError, type ActionContext, type ActionOutput } from "./types.js";

interface CompiledAction {
  readonly name: string;
  readonly kind: "pure" | "cluster" | "custom";
  readonly params: unknown;
  readonly timeoutMs: number;
  readonly run: (params: unknown, ctx: ActionContext) => Promise<ActionOutput> | ActionOutput;
}

export interface CompiledWorkflow {
  readonly name: string;
  readonly builtin: boolean;
  readonly enabled: boolean;
  readonly stop: boolean;
  readonly triggers: readonly CompiledTrigger[];
  readonly actions: readonly CompiledAction[];
}

export type ActionStatus = "ok" | "failed" | "timeout" | "skipped";

export interface ActionTrace {
  readonly action: string;
  readonly status: ActionStatus;
  readonly ms: number;
  readonly note?: string | undefined;
  readonly error?: string | undefined;
}

export interface WorkflowTrace {
  readonly workflow: string;
  readonly builtin: boolean;
  readonly matched: boolean;
  /** Which trigger matched, or why none did (or "disabled", "stopped by X"). */
  readonly why: string;
  readonly actions: readonly ActionTrace[];
}

export interface WorkflowResult {
  readonly issue: Issue;
  /** Set when an action silenced the Issue: it goes nowhere. */
  readonly silenced?: string | undefined;
  readonly trace: readonly WorkflowTrace[];
}

export interface RunOptions {
  readonly kube: KubeReader | undefined;
  readonly log: Logger;
  readonly signal?: AbortSignal;
  readonly now?: () => Date;
}

export interface EngineSettings {
  readonly workflows: readonly WorkflowConfig[];
  readonly actionTimeoutMs: number;
  readonly defaults: boolean;
}

/**
 * Runs workflows over Issues. Triggers are pure; every matching workflow
 * runs in order until one with `stop` matched. An action that fails or times
 * out adds an enrichment saying so and the rest still run: an Issue always
 * comes out. Built-in workflows come first; a user workflow with the same
 * name replaces one in place, and `enabled: false` turns it off.
 */
export class WorkflowEngine {
  private constructor(readonly workflows: readonly CompiledWorkflow[]) {}

  static async create(settings: EngineSettings, opts: { configDir: string }): Promise<WorkflowEngine> {
    const user = new Map(settings.workflows.map((w, i) => [w.name, { w, i }]));
    const ordered: { w: WorkflowConfig; builtin: boolean; index: number }[] = [];
    if (settings.defaults) {
      for (const d of DEFAULT_WORKFLOWS) {
        const override = user.get(d.name);
        if (override !== undefined) {
          // `{ name, enabled: false }` alone disables a built-in; anything more replaces it.
          const replaces = override.w.triggers.length > 0 || override.w.actions.length > 0;
          ordered.push({ w: replaces ? override.w : { ...d, enabled: override.w.enabled }, builtin: !replaces, index: override.i });
          user.delete(d.name);
        } else {
          ordered.push({ w: d, builtin: true, index: -1 });
        }
      }
    }
    for (const { w, i } of user.values()) ordered.push({ w, builtin: false, index: i });
    const compiled: CompiledWorkflow[] = [];
    for (const { w, builtin, index } of ordered) {
      const actions: CompiledAction[] = [];
      for (const [j, a] of w.actions.entries()) {
        const where = `workflows[${index}].actions[${j}]`;
        if (a.action === "custom") {
          const p = a.params as { module: string; params: Record<string, unknown>; name?: string };
          const custom = await loadCustomAction(p.module, p.params, { configDir: opts.configDir, where: `${where}.custom`, name: p.name });
          actions.push({ name: `custom:${custom.name}`, kind: "custom", params: custom.params, timeoutMs: a.timeoutMs ?? settings.actionTimeoutMs, run: custom.run });
        } else {
          const def = BUILTIN_ACTIONS[a.action]!;
          actions.push({ name: a.action, kind: def.kind, params: a.params, timeoutMs: a.timeoutMs ?? settings.actionTimeoutMs, run: def.run.bind(def) as CompiledAction["run"] });
        }
      }
      compiled.push({ name: w.name, builtin, enabled: w.enabled, stop: w.stop, triggers: w.triggers.map(compileTrigger), actions });
    }
    return new WorkflowEngine(compiled);
  }

  private readonly plans = new WeakMap<Issue, { workflow: CompiledWorkflow; matched: boolean; why: string }[]>();

  /** Matching decisions for an Issue (memoised per Issue object: isPure and run ask for the same one). */
  plan(issue: Issue): { workflow: CompiledWorkflow; matched: boolean; why: string }[] {
    let p = this.plans.get(issue);
    if (p === undefined) {
      p = this.computePlan(issue);
      this.plans.set(issue, p);
    }
    return p;
  }

  private computePlan(issue: Issue): { workflow: CompiledWorkflow; matched: boolean; why: string }[] {
    const out: { workflow: CompiledWorkflow; matched: boolean; why: string }[] = [];
    let stoppedBy: string | undefined;
    for (const w of this.workflows) {
      if (stoppedBy !== undefined) {
        out.push({ workflow: w, matched: false, why: `not evaluated: ${stoppedBy} matched and has stop: true` });
        continue;
      }
      if (!w.enabled) {
        out.push({ workflow: w, matched: false, why: "disabled" });
        continue;
      }
      if (w.triggers.length === 0) {
        out.push({ workflow: w, matched: false, why: "has no triggers" });
        continue;
      }
      const results = w.triggers.map((t) => t.match(issue));
      const hit = results.find((r) => r.ok);
      if (hit !== undefined) {
        out.push({ workflow: w, matched: true, why: `matched ${hit.why}` });
        if (w.stop) stoppedBy = w.name;
      } else {
        out.push({ workflow: w, matched: false, why: results.length === 1 ? results[0]!.why : results.map((r) => r.why).join("; ") });
      }
    }
    return out;
  }

  /**
   * True when every action of every matching workflow only reads the Issue:
   * such Issues can be processed while the webhook request waits.
   */
  isPure(issue: Issue): boolean {
    return this.plan(issue).every((p) => !p.matched || p.workflow.actions.every((a) => a.kind === "pure"));
  }

  /** Runs the matching workflows. Never rejects because of an action. */
  async run(issue: Issue, opts: RunOptions): Promise<WorkflowResult> {
    const now = opts.now ?? (() => new Date());
    const trace: WorkflowTrace[] = [];
    let current = issue;
    const plan = this.plan(issue);
    const kube = opts.kube !== undefined ? onceEach(opts.kube) : undefined;
    for (const [index, p] of plan.entries()) {
      if (!p.matched) {
        trace.push({ workflow: p.workflow.name, builtin: p.workflow.builtin, matched: false, why: p.why, actions: [] });
        continue;
      }
      const actions: ActionTrace[] = [];
      for (const a of p.workflow.actions) {
        if (a.kind === "cluster" && kube === undefined) {
          actions.push({ action: a.name, status: "skipped", ms: 0, note: "no cluster access" });
          continue;
        }
        const started = performance.now();
        const elapsed = (): number => Math.round((performance.now() - started) * 10) / 10;
        const span = tracer()?.start(`workflow.action ${a.name}`, { "kubecano.workflow": p.workflow.name, "kubecano.action": a.name, "kubecano.issue.id": current.id });
        let out: ActionOutput | undefined;
        let error: unknown;
        let timedOut = false;
        if (a.kind === "pure") {
          // Pure actions only read the Issue and return at once: no timer, signal or child logger (the webhook's hot path).
          try {
            out = a.run(a.params, { issue: current, kube: undefined, signal: NEVER, log: opts.log, now }) as ActionOutput;
          } catch (e) {
            error = e;
          }
        } else {
          const { signal, release } = actionSignal(opts.signal, a.timeoutMs);
          try {
            out = await withTimeout(Promise.resolve().then(() => a.run(a.params, { issue: current, kube, signal, log: opts.log.child({ workflow: p.workflow.name, action: a.name }), now })), a.timeoutMs, signal);
          } catch (e) {
            error = e;
            timedOut = e instanceof TimeoutError;
          } finally {
            release();
          }
        }
        if (out !== undefined) {
          current = apply(current, out, a.name);
          actions.push({ action: a.name, status: "ok", ms: elapsed(), note: out.note });
          span?.end();
          if (out.silence !== undefined) {
            trace.push({ workflow: p.workflow.name, builtin: p.workflow.builtin, matched: true, why: p.why, actions });
            // The rest still appear in the trace, so `replay --explain` lists every workflow.
            for (const rest of plan.slice(index + 1)) trace.push({ workflow: rest.workflow.name, builtin: rest.workflow.builtin, matched: false, why: rest.matched ? `not run: ${p.workflow.name} silenced the Issue` : rest.why, actions: [] });
            return { issue: current, silenced: `${out.silence} (workflow ${p.workflow.name})`, trace };
          }
          continue;
        }
        const message = timedOut ? `no result within ${a.timeoutMs} ms` : actionErrorMessage(error);
        if (!(error instanceof ActionError) && !(error instanceof KubeError) && !timedOut) opts.log.warn({ err: error, workflow: p.workflow.name, action: a.name }, `action ${a.name} failed: ${message}`);
        actions.push({ action: a.name, status: timedOut ? "timeout" : "failed", ms: elapsed(), error: message });
        span?.fail(message);
        span?.end();
        // Unreachable clusters are reported once elsewhere; everything else is worth telling the reader.
        if (!(error instanceof KubeError && error.unreachable)) current = { ...current, enrichments: [...current.enrichments, failureEnrichment(a.name, message)] };
      }
      trace.push({ workflow: p.workflow.name, builtin: p.workflow.builtin, matched: true, why: p.why, actions });
    }
    return { issue: current, trace };
  }
}

/**
 * The cluster as one Issue's actions see it: each distinct read is made once
 * per run and its answer (or failure) shared. pod_status and pod_logs both
 * read the pod; a timed-out API server costs one timeout, not one per action.
 */
function onceEach(kube: KubeReader): KubeReader {
  const seen = new Map<string, Promise<unknown>>();
  return new Proxy(kube, {
    get: (target, prop, receiver) => {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]): Promise<unknown> => {
        const key = `${String(prop)}\u0000${JSON.stringify(args)}`;
        let p = seen.get(key);
        if (p === undefined) {
          p = (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          seen.set(key, p);
        }
        return p;
      };
    },
  });
}

function apply(issue: Issue, out: ActionOutput, source: string): Issue {
  let next = issue;
  if (out.enrichments !== undefined && out.enrichments.length > 0) {
    next = { ...next, enrichments: [...next.enrichments, ...out.enrichments.map((e): Enrichment => ({ ...e, source: e.source ?? source }))] };
  }
  if (out.severity !== undefined) next = { ...next, severity: out.severity };
  if (out.links !== undefined && out.links.length > 0) {
    const known = new Set(next.links.map((l) => l.url));
    next = { ...next, links: [...next.links, ...out.links.filter((l: Link) => !known.has(l.url))] };
  }
  return next;
}

function failureEnrichment(action: string, message: string): Enrichment {
  return { title: `${action} could not run`, source: action, blocks: [{ type: "markdown", text: `:warning: ${message}` }] };
}

function actionErrorMessage(e: unknown): string {
  return errorMessage(e).split("\n")[0]!.slice(0, 500);
}

class TimeoutError extends Error {}

/** The signal pure actions get: they finish before anything could abort them. */
const NEVER = new AbortController().signal;

/**
 * The signal of one action run: it aborts at the action's timeout or when
 * `parent` aborts; `release` must be called when the run ends. A plain
 * controller and an unref'd timer rather than AbortSignal.any([parent,
 * AbortSignal.timeout()]): on Node 20 that pair keeps every run's signals and
 * timer alive for the whole timeout, which during a 50,000-alert webhook
 * doubled the time to answer it and added hundreds of MB of memory.
 */
function actionSignal(parent: AbortSignal | undefined, timeoutMs: number): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no result within ${timeoutMs} ms`, "TimeoutError")), timeoutMs);
  timer.unref();
  const onAbort = (): void => controller.abort(parent?.reason);
  if (parent?.aborted === true) onAbort();
  else parent?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    release: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onAbort);
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(`timeout after ${ms} ms`)), ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new TimeoutError("aborted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        clearTimeout(t);
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        signal.removeEventListener("abort", onAbort);
        reject(e as Error);
      },
    );
  });
}
