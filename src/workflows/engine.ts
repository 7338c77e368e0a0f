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
import { compileTrigger, type CompiledTrigger, type MatchResult } from "./triggers.js";
import { ActionError, type ActionContext, type ActionOutput } from "./types.js";

interface CompiledAction {
  readonly name: string;
  readonly kind: "pure" | "cluster" | "custom";
  readonly params: unknown;
  readonly timeoutMs: number;
  readonly run: (params: unknown, ctx: ActionContext) => Promise<ActionOutput> | ActionOutput;
  /** Its trace when skipped for want of a cluster (immutable, so shared). */
  readonly skipped: ActionTrace;
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

/** One workflow's matching decision for an Issue. */
export interface PlanEntry {
  readonly workflow: CompiledWorkflow;
  readonly matched: boolean;
  readonly why: string;
}

/**
 * A plan entry as the engine keeps it: decisions are immutable and repeat
 * from Issue to Issue (the same few texts per workflow), so each is made once
 * and shared, with the trace a workflow that did not run shows.
 */
interface Decision extends PlanEntry {
  /** For an unmatched workflow: its whole trace entry. */
  readonly trace: WorkflowTrace | undefined;
  /** For a matched one whose actions all need the cluster: its trace without a cluster (made when first needed). */
  noCluster: WorkflowTrace | undefined;
}

/** A compiled workflow and its decisions made so far. */
interface Slot {
  readonly workflow: CompiledWorkflow;
  /** Every action only reads the Issue. */
  readonly pure: boolean;
  /** Every action needs the cluster (so without one, all are skipped). */
  readonly allCluster: boolean;
  /** Some action is a custom one (always waited for). */
  readonly custom: boolean;
  readonly disabled: Decision;
  readonly noTriggers: Decision;
  /** By trigger: the decision when it is the first that matches. */
  readonly matched: readonly Decision[];
  /** By the triggers' (shared) miss results, one level per trigger. */
  unmatched: MissNode;
  /** Nodes under `unmatched` (bounded: miss results quote values from alerts). */
  missNodes: number;
  /** By the name of the stop workflow that matched earlier. */
  readonly stopped: Map<string, Decision>;
  /** The only Issue sources its triggers can match, when they are limited (see CompiledTrigger.sources). */
  readonly sources: ReadonlySet<string> | undefined;
  /** For other sources: the decision, the same for every Issue of that source. */
  readonly otherSources: Map<string, Decision>;
}

/** The decision of a workflow whose triggers missed with these results (see Slot.unmatched). */
interface MissNode {
  readonly result: MatchResult | undefined;
  readonly parent: MissNode | undefined;
  next: Map<MatchResult, MissNode> | undefined;
  decision: Decision | undefined;
}

const UNMATCHED_PER_WORKFLOW = 256;

function missRoot(): MissNode {
  return { result: undefined, parent: undefined, next: undefined, decision: undefined };
}

function decision(workflow: CompiledWorkflow, matched: boolean, why: string): Decision {
  return { workflow, matched, why, trace: matched ? undefined : sharedTrace(workflow, false, why, []), noCluster: undefined };
}

/** A trace entry that many results share: frozen, so no reader can change it for the others. */
function sharedTrace(workflow: CompiledWorkflow, matched: boolean, why: string, actions: readonly ActionTrace[]): WorkflowTrace {
  return Object.freeze({ workflow: workflow.name, builtin: workflow.builtin, matched, why, actions: Object.freeze(actions) });
}

function slotOf(w: CompiledWorkflow): Slot {
  return {
    workflow: w,
    pure: w.actions.every((a) => a.kind === "pure"),
    allCluster: w.actions.every((a) => a.kind === "cluster"),
    custom: w.actions.some((a) => a.kind === "custom"),
    disabled: decision(w, false, "disabled"),
    noTriggers: decision(w, false, "has no triggers"),
    matched: w.triggers.map((t) => decision(w, true, `matched ${t.description}`)),
    unmatched: missRoot(),
    missNodes: 0,
    stopped: new Map(),
    sources: w.triggers.length > 0 && w.triggers.every((t) => t.sources !== undefined) ? new Set(w.triggers.flatMap((t) => [...t.sources!])) : undefined,
    otherSources: new Map(),
  };
}

/** The node for one more trigger's miss result under `node` (Match results of misses are shared: see triggers.ts). */
function missChild(slot: Slot, node: MissNode, result: MatchResult): MissNode {
  let child = node.next?.get(result);
  if (child === undefined) {
    if (slot.missNodes >= UNMATCHED_PER_WORKFLOW * slot.workflow.triggers.length) {
      // Start over; `node` may be dropped with the rest, which only costs its decision being made again.
      slot.unmatched = missRoot();
      slot.missNodes = 0;
    }
    child = { result, parent: node, next: undefined, decision: undefined };
    (node.next ??= new Map()).set(result, child);
    slot.missNodes++;
  }
  return child;
}

/** A workflow's triggers on an Issue. They are pure: the first that matches decides, the rest need not be asked. */
function evaluate(slot: Slot, issue: Issue): Decision {
  const triggers = slot.workflow.triggers;
  let missed = slot.unmatched;
  for (let j = 0; j < triggers.length; j++) {
    const r = triggers[j]!.match(issue);
    if (r.ok) return slot.matched[j]!;
    missed = missChild(slot, missed, r);
  }
  return unmatchedDecision(slot, missed);
}

/** Every trigger missed: the reasons, joined in trigger order. */
function unmatchedDecision(slot: Slot, node: MissNode): Decision {
  if (node.decision !== undefined) return node.decision;
  const whys: string[] = [];
  for (let n: MissNode | undefined = node; n?.result !== undefined; n = n.parent) whys.unshift(n.result.why);
  return (node.decision = decision(slot.workflow, false, whys.join("; ")));
}

function stoppedDecision(slot: Slot, stoppedBy: string): Decision {
  let d = slot.stopped.get(stoppedBy);
  if (d === undefined) {
    d = decision(slot.workflow, false, `not evaluated: ${stoppedBy} matched and has stop: true`);
    slot.stopped.set(stoppedBy, d);
  }
  return d;
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
  private readonly slots: readonly Slot[];

  private constructor(readonly workflows: readonly CompiledWorkflow[]) {
    this.slots = workflows.map(slotOf);
  }

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
          const name = `custom:${custom.name}`;
          actions.push({ name, kind: "custom", params: custom.params, timeoutMs: a.timeoutMs ?? settings.actionTimeoutMs, run: custom.run, skipped: skippedTrace(name) });
        } else {
          const def = BUILTIN_ACTIONS[a.action]!;
          actions.push({ name: a.action, kind: def.kind, params: a.params, timeoutMs: a.timeoutMs ?? settings.actionTimeoutMs, run: def.run.bind(def) as CompiledAction["run"], skipped: skippedTrace(a.action) });
        }
      }
      compiled.push({ name: w.name, builtin, enabled: w.enabled, stop: w.stop, triggers: w.triggers.map(compileTrigger), actions });
    }
    return new WorkflowEngine(compiled);
  }

  /** The last Issue planned and its plan: isPure and then run ask for the same one, one after the other. */
  private memoIssue: Issue | undefined;
  private memoPlan: readonly Decision[] = [];

  /** Matching decisions for an Issue, one per workflow in order. */
  plan(issue: Issue): readonly PlanEntry[] {
    return this.decide(issue);
  }

  private decide(issue: Issue): readonly Decision[] {
    if (this.memoIssue === issue) return this.memoPlan;
    const plan = this.computePlan(issue);
    this.memoIssue = issue;
    this.memoPlan = plan;
    return plan;
  }

  private computePlan(issue: Issue): Decision[] {
    const slots = this.slots;
    const out = new Array<Decision>(slots.length);
    let stoppedBy: string | undefined;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      const w = slot.workflow;
      if (stoppedBy !== undefined) {
        out[i] = stoppedDecision(slot, stoppedBy);
      } else if (!w.enabled) {
        out[i] = slot.disabled;
      } else if (w.triggers.length === 0) {
        out[i] = slot.noTriggers;
      } else if (slot.sources !== undefined && !slot.sources.has(issue.source)) {
        // No trigger can match this source (an alert for the watch workflows, an event for the alert ones).
        let d = slot.otherSources.get(issue.source);
        if (d === undefined) {
          d = evaluate(slot, issue);
          if (slot.otherSources.size >= UNMATCHED_PER_WORKFLOW) slot.otherSources.clear();
          slot.otherSources.set(issue.source, d);
        }
        out[i] = d;
      } else {
        const d = evaluate(slot, issue);
        if (d.matched && w.stop) stoppedBy = w.name;
        out[i] = d;
      }
    }
    return out;
  }

  /**
   * True when every action of every matching workflow only reads the Issue:
   * such Issues can be processed while the webhook request waits.
   */
  isPure(issue: Issue): boolean {
    const plan = this.decide(issue);
    for (let i = 0; i < plan.length; i++) if (plan[i]!.matched && !this.slots[i]!.pure) return false;
    return true;
  }

  /** Runs the matching workflows. Never rejects because of an action. */
  run(issue: Issue, opts: RunOptions): Promise<WorkflowResult> {
    try {
      const r = this.runNow(issue, opts);
      return r instanceof Promise ? r : Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /**
   * As `run`, but the result itself when no action had to be waited for
   * (only pure actions, or none that can run without a cluster): that is
   * most webhooks, answered without a round of promises per Issue.
   */
  runNow(issue: Issue, opts: RunOptions): WorkflowResult | Promise<WorkflowResult> {
    const plan = this.decide(issue);
    if (!this.waits(plan, opts.kube !== undefined)) return this.runPure(issue, opts, plan);
    const steps = this.steps(issue, opts, plan);
    const first = steps.next();
    return first.done === true ? first.value : finish(steps, first.value);
  }

  /** Whether a run of this plan has an action to wait for: a custom action, or a cluster action with a cluster. */
  private waits(plan: readonly Decision[], cluster: boolean): boolean {
    for (let i = 0; i < plan.length; i++) {
      if (!plan[i]!.matched) continue;
      const slot = this.slots[i]!;
      if (!slot.pure && (cluster || slot.custom)) return true;
    }
    return false;
  }

  /** The (shared) trace of a workflow that runs no action: it did not match, or all its actions need the cluster and there is none. */
  private traceWithoutActions(p: Decision, index: number, cluster: boolean): WorkflowTrace | undefined {
    if (!p.matched) return p.trace!;
    if (!cluster && this.slots[index]!.allCluster) return noClusterTrace(p);
    return undefined;
  }

  /**
   * A run in which every action that can run is pure (see `waits`): the same
   * as `steps` gives, without a generator (the webhook's hot path).
   */
  private runPure(issue: Issue, opts: RunOptions, plan: readonly Decision[]): WorkflowResult {
    const now = opts.now ?? defaultNow;
    const trace = new Array<WorkflowTrace>(plan.length);
    let current = issue;
    for (let index = 0; index < plan.length; index++) {
      const p = plan[index]!;
      const fixed = this.traceWithoutActions(p, index, opts.kube !== undefined);
      if (fixed !== undefined) {
        trace[index] = fixed;
        continue;
      }
      const actions: ActionTrace[] = [];
      for (const a of p.workflow.actions) {
        if (a.kind !== "pure") {
          // `waits` said so: a cluster action, and no cluster.
          actions.push(a.skipped);
          continue;
        }
        const started = performance.now();
        const span = actionSpan(p, a, current);
        let out: ActionOutput | undefined;
        let error: unknown;
        try {
          out = runPureAction(a, current, opts, now);
        } catch (e) {
          error = e;
        }
        current = settle(p, a, current, out, error, false, started, span, opts, actions);
        if (out?.silence !== undefined) return silenced(plan, index, actions, current, out.silence, trace);
      }
      trace[index] = { workflow: p.workflow.name, builtin: p.workflow.builtin, matched: true, why: p.why, actions };
    }
    return { issue: current, trace };
  }

  /** Any run, as steps that yield what has to be waited for (an action that reads the cluster, a custom action) and get its outcome back. */
  private *steps(issue: Issue, opts: RunOptions, plan: readonly Decision[]): Generator<Promise<unknown>, WorkflowResult, unknown> {
    const now = opts.now ?? defaultNow;
    const trace = new Array<WorkflowTrace>(plan.length);
    let current = issue;
    let kube: KubeReader | undefined;
    for (let index = 0; index < plan.length; index++) {
      const p = plan[index]!;
      const fixed = this.traceWithoutActions(p, index, opts.kube !== undefined);
      if (fixed !== undefined) {
        trace[index] = fixed;
        continue;
      }
      const actions: ActionTrace[] = [];
      for (const a of p.workflow.actions) {
        if (a.kind === "cluster" && opts.kube === undefined) {
          actions.push(a.skipped);
          continue;
        }
        if (a.kind !== "pure" && opts.kube !== undefined) kube ??= onceEach(opts.kube);
        const started = performance.now();
        const span = actionSpan(p, a, current);
        let out: ActionOutput | undefined;
        let error: unknown;
        let timedOut = false;
        if (a.kind === "pure") {
          try {
            out = runPureAction(a, current, opts, now);
          } catch (e) {
            error = e;
          }
        } else {
          const { signal, release } = actionSignal(opts.signal, a.timeoutMs);
          try {
            out = (yield withTimeout(Promise.resolve().then(() => a.run(a.params, { issue: current, kube, signal, log: opts.log.child({ workflow: p.workflow.name, action: a.name }), now })), a.timeoutMs, signal)) as ActionOutput;
          } catch (e) {
            error = e;
            timedOut = e instanceof TimeoutError;
          } finally {
            release();
          }
        }
        current = settle(p, a, current, out, error, timedOut, started, span, opts, actions);
        if (out?.silence !== undefined) return silenced(plan, index, actions, current, out.silence, trace);
      }
      trace[index] = { workflow: p.workflow.name, builtin: p.workflow.builtin, matched: true, why: p.why, actions };
    }
    return { issue: current, trace };
  }
}

/** A matched workflow whose actions all need the cluster, run without one: every action skipped, the same trace for every Issue. */
function noClusterTrace(p: Decision): WorkflowTrace {
  return (p.noCluster ??= sharedTrace(p.workflow, true, p.why, p.workflow.actions.map((a) => a.skipped)));
}

type Span = ReturnType<NonNullable<ReturnType<typeof tracer>>["start"]>;

function actionSpan(p: Decision, a: CompiledAction, issue: Issue): Span | undefined {
  return tracer()?.start(`workflow.action ${a.name}`, { "kubecano.workflow": p.workflow.name, "kubecano.action": a.name, "kubecano.issue.id": issue.id });
}

/** Pure actions only read the Issue and return at once: no timer, signal or child logger (the webhook's hot path). */
function runPureAction(a: CompiledAction, issue: Issue, opts: RunOptions, now: () => Date): ActionOutput {
  return a.run(a.params, { issue, kube: undefined, signal: NEVER, log: opts.log, now }) as ActionOutput;
}

/**
 * Records an action's outcome in its workflow's trace and returns the Issue
 * after it: with its output applied, or with a note that it failed.
 */
function settle(p: Decision, a: CompiledAction, current: Issue, out: ActionOutput | undefined, error: unknown, timedOut: boolean, started: number, span: Span | undefined, opts: RunOptions, actions: ActionTrace[]): Issue {
  if (out !== undefined) {
    actions.push({ action: a.name, status: "ok", ms: elapsedMs(started), note: out.note });
    span?.end();
    return apply(current, out, a.name);
  }
  const message = timedOut ? `no result within ${a.timeoutMs} ms` : actionErrorMessage(error);
  if (!(error instanceof ActionError) && !(error instanceof KubeError) && !timedOut) opts.log.warn({ err: error, workflow: p.workflow.name, action: a.name }, `action ${a.name} failed: ${message}`);
  actions.push({ action: a.name, status: timedOut ? "timeout" : "failed", ms: elapsedMs(started), error: message });
  span?.fail(message);
  span?.end();
  // Unreachable clusters are reported once elsewhere; everything else is worth telling the reader.
  if (error instanceof KubeError && error.unreachable) return current;
  return { ...current, enrichments: [...current.enrichments, failureEnrichment(a.name, message)] };
}

/** The result of a run that plan[index]'s workflow silenced: the rest still appear in the trace, so `replay --explain` lists every workflow. */
function silenced(plan: readonly Decision[], index: number, actions: ActionTrace[], issue: Issue, reason: string, trace: WorkflowTrace[]): WorkflowResult {
  const p = plan[index]!;
  trace[index] = { workflow: p.workflow.name, builtin: p.workflow.builtin, matched: true, why: p.why, actions };
  for (let k = index + 1; k < plan.length; k++) {
    const rest = plan[k]!;
    trace[k] = rest.matched ? { workflow: rest.workflow.name, builtin: rest.workflow.builtin, matched: false, why: `not run: ${p.workflow.name} silenced the Issue`, actions: [] } : rest.trace!;
  }
  return { issue, silenced: `${reason} (workflow ${p.workflow.name})`, trace };
}

/** Drives a run's steps past its first wait: each awaited outcome (or failure) goes back into the steps. */
async function finish(steps: Generator<Promise<unknown>, WorkflowResult, unknown>, pending: Promise<unknown>): Promise<WorkflowResult> {
  for (;;) {
    let value: unknown;
    let failed = false;
    let error: unknown;
    try {
      value = await pending;
    } catch (e) {
      failed = true;
      error = e;
    }
    const next = failed ? steps.throw(error) : steps.next(value);
    if (next.done === true) return next.value;
    pending = next.value;
  }
}

const defaultNow = (): Date => new Date();

function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

function skippedTrace(action: string): ActionTrace {
  return Object.freeze({ action, status: "skipped", ms: 0, note: "no cluster access" });
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
