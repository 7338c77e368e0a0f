import type { z } from "zod";
import type { Enrichment, Link } from "../core/blocks.js";
import type { Issue } from "../core/issue.js";
import type { Severity } from "../core/severity.js";
import type { KubeReader } from "../kube/client.js";
import type { Logger } from "../observability/logger.js";

/** What an action sees. `kube` is undefined when no cluster is configured or reachable. */
export interface ActionContext {
  /** The Issue as it is now: earlier actions' enrichments and changes included. */
  readonly issue: Issue;
  readonly kube: KubeReader | undefined;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly now: () => Date;
}

/** What an action returns. Every field is optional; an empty object means "nothing to add". */
export interface ActionOutput {
  readonly enrichments?: readonly Enrichment[];
  readonly severity?: Severity;
  readonly links?: readonly Link[];
  /** Drop the Issue: it is recorded but sent nowhere. The text says why. */
  readonly silence?: string;
  /** One line for `replay --explain`: what the action found or did. */
  readonly note?: string;
}

/**
 * A workflow action: one file in src/workflows/actions/ and one line in the
 * registry. Its parameters are validated when the config loads.
 * - "pure" actions read only the Issue; they may run while the webhook waits.
 * - "cluster" actions read the Kubernetes API; without a cluster they are skipped.
 */
export interface ActionDefinition<P = unknown> {
  readonly name: string;
  readonly description: string;
  readonly kind: "pure" | "cluster";
  readonly params: z.ZodType<P>;
  run(params: P, ctx: ActionContext): Promise<ActionOutput> | ActionOutput;
}

export function defineAction<S extends z.ZodType>(a: {
  name: string;
  description: string;
  kind: "pure" | "cluster";
  params: S;
  run(params: z.output<S>, ctx: ActionContext): Promise<ActionOutput> | ActionOutput;
}): ActionDefinition<z.output<S>> {
  return a as ActionDefinition<z.output<S>>;
}

/** An action error that is the cluster's or the input's fault, not a bug: shown as is. */
export class ActionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ActionError";
  }
}
