import path from "node:path";
import type { LoadedConfig } from "../config/load.js";
import { ClusterAccess } from "../kube/access.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { startTracing } from "../observability/tracing.js";
import { Pipeline, type PipelineDeps } from "../pipeline.js";
import { VERSION } from "../version.js";
import { WorkflowEngine } from "../workflows/engine.js";

export interface ClusterFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  /** --no-cluster: skip enrichment that reads the cluster. */
  readonly cluster?: boolean | undefined;
}

/**
 * What listen, replay and watch share: cluster access, the workflow engine
 * (custom actions are loaded here, so a broken one fails at start-up) and
 * the pipeline.
 */
export async function createPipeline(loaded: LoadedConfig, flags: ClusterFlags, deps: { log: Logger; metrics?: Metrics | undefined; env: NodeJS.ProcessEnv; state?: PipelineDeps["state"] }): Promise<{ pipeline: Pipeline; cluster: ClusterAccess; workflows: WorkflowEngine }> {
  const { config } = loaded;
  // Only with OTEL_EXPORTER_OTLP_ENDPOINT set; cli.ts's main() flushes the spans before the process exits.
  await startTracing({ env: deps.env, log: deps.log, version: VERSION });
  const workflows = await WorkflowEngine.create(
    { workflows: config.workflows, actionTimeoutMs: config.enrichment.actionTimeout, defaults: config.enrichment.defaults },
    { configDir: loaded.filepath !== undefined ? path.dirname(loaded.filepath) : process.cwd() },
  );
  const cluster = await ClusterAccess.open({ kubeconfig: flags.kubeconfig, context: flags.context, env: deps.env, log: deps.log, disabled: flags.cluster === false });
  const pipeline = new Pipeline({ config, log: deps.log, metrics: deps.metrics, workflows, cluster, state: deps.state });
  return { pipeline, cluster, workflows };
}
