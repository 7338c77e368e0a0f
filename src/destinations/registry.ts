import type { z } from "zod";
import { consoleParamsSchema } from "./console/params.js";
import { slackParamsSchema } from "./slack/params.js";
import { pagerdutyParamsSchema } from "./pagerduty/params.js";
import { opsgenieParamsSchema } from "./opsgenie/params.js";
import { webhookParamsSchema } from "./webhook/params.js";
import { fileParamsSchema } from "./file/params.js";
import { msteamsParamsSchema } from "./msteams/params.js";
import { jiraParamsSchema } from "./jira/params.js";
import type { Destination, DestinationDeps } from "./types.js";

/**
 * Every destination type: its parameter schema (validated when the config
 * loads) and a lazy loader, so the Slack client is only imported when a Slack
 * destination is used. A new destination is one folder plus one entry here.
 */
interface DestinationModule<P> {
  create(name: string, params: P, deps: DestinationDeps): Destination | Promise<Destination>;
}

interface DestinationType<S extends z.ZodType> {
  readonly params: S;
  /** Keys of params that hold secrets: redacted by `config print`, scrubbed from logs. */
  readonly secretParams: readonly string[];
  readonly load: () => Promise<DestinationModule<z.output<S>>>;
}

function defineType<S extends z.ZodType>(t: DestinationType<S>): DestinationType<S> {
  return t;
}

export const DESTINATION_TYPES = {
  console: defineType({
    params: consoleParamsSchema,
    secretParams: [],
    load: () => import("./console/index.js"),
  }),
  slack: defineType({
    params: slackParamsSchema,
    secretParams: ["token", "api_key", "webhook_url"],
    load: () => import("./slack/index.js"),
  }),
  pagerduty: defineType({ params: pagerdutyParamsSchema, secretParams: ["routing_key"], load: () => import("./pagerduty/index.js") }),
  opsgenie: defineType({ params: opsgenieParamsSchema, secretParams: ["api_key"], load: () => import("./opsgenie/index.js") }),
  webhook: defineType({ params: webhookParamsSchema, secretParams: ["url", "secret", "headers"], load: () => import("./webhook/index.js") }),
  file: defineType({ params: fileParamsSchema, secretParams: [], load: () => import("./file/index.js") }),
  msteams: defineType({ params: msteamsParamsSchema, secretParams: ["webhook_url"], load: () => import("./msteams/index.js") }),
  jira: defineType({ params: jiraParamsSchema, secretParams: ["api_token"], load: () => import("./jira/index.js") }),
} as const;

export type DestinationTypeName = keyof typeof DESTINATION_TYPES;
export const DESTINATION_TYPE_NAMES = Object.keys(DESTINATION_TYPES) as DestinationTypeName[];

export type DestinationParams<T extends DestinationTypeName> = z.output<(typeof DESTINATION_TYPES)[T]["params"]>;
