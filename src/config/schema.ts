import { z } from "zod";
import { SEVERITIES } from "../core/severity.js";
import { DESTINATION_TYPES, DESTINATION_TYPE_NAMES } from "../destinations/registry.js";
import { routesSchema } from "../routing/schema.js";
import { watchSchema } from "../sources/kubernetes/config.js";
import { enrichmentSchema, workflowsSchema } from "../workflows/schema.js";
import { duration } from "./duration.js";

/**
 * The one schema of kubecano's configuration. Objects are strict: a typo in
 * a key is an error with its path at start-up, not a silently ignored setting.
 * `kubecano config schema` prints it as JSON Schema for editors.
 */

const destinationName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "use letters, digits, '-', '_' or '.', at most 63 characters, starting with a letter or digit");

function variant<T extends string, P extends z.ZodType>(type: T, params: P) {
  // Params are optional in the file (`{ name: terminal, type: console }`): parse {} then.
  return z.strictObject({ name: destinationName, type: z.literal(type), params: z.prefault(params, {} as z.input<P>) });
}

/** One variant per destination type in src/destinations/registry.ts. */
export const destinationSchema = z.discriminatedUnion(
  "type",
  [variant("console", DESTINATION_TYPES.console.params), variant("slack", DESTINATION_TYPES.slack.params), variant("pagerduty", DESTINATION_TYPES.pagerduty.params), variant("opsgenie", DESTINATION_TYPES.opsgenie.params), variant("webhook", DESTINATION_TYPES.webhook.params), variant("file", DESTINATION_TYPES.file.params), variant("msteams", DESTINATION_TYPES.msteams.params), variant("jira", DESTINATION_TYPES.jira.params)],
  { error: (iss) => (iss.code === "invalid_union" ? `unknown destination type: use one of ${DESTINATION_TYPE_NAMES.join(", ")}` : undefined) },
);

const authSchema = z.union([
  z.strictObject({ bearerToken: z.string().min(16, "use at least 16 characters").meta({ description: "Secret. Clients send Authorization: Bearer <token>." }) }),
  z.strictObject({
    basic: z.strictObject({
      username: z.string().min(1),
      password: z.string().min(8, "use at least 8 characters").meta({ description: "Secret." }),
    }),
  }),
]);

export const serverSchema = z.strictObject({
  host: z.string().min(1).default("0.0.0.0"),
  port: z.number().int().min(0).max(65535).default(8080),
  maxBodyBytes: z.number().int().min(1024).max(512 * 1024 * 1024).default(10 * 1024 * 1024),
  maxConnections: z.number().int().min(1).max(65_536).default(1024).meta({ description: "Concurrent connections; more are refused." }),
  tls: z
    .strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) })
    .optional()
    .meta({ description: "Serve HTTPS with this PEM certificate and key (--tls-cert, --tls-key)." }),
  auth: authSchema.optional().meta({ description: "Require bearer or basic auth on /api/*; health and metrics stay open." }),
});

export const deliverySchema = z.strictObject({
  maxBacklog: z.number().int().min(1).default(10_000).meta({ description: "Pending deliveries past which /api/alerts answers 503 (Alertmanager retries later)." }),
  concurrency: z.number().int().min(1).max(64).default(4).meta({ description: "Concurrent sends per destination." }),
  attemptTimeout: duration.default(30_000).meta({ description: "Upper bound of one send attempt." }),
  retry: z
    .strictObject({
      initialDelay: duration.default(1_000),
      maxDelay: duration.default(300_000),
      maxAge: duration.default(86_400_000).meta({ description: "Give up on a delivery this long after it was accepted." }),
    })
    .prefault({}),
  shutdownGrace: duration.default(20_000).meta({ description: "How long SIGTERM waits for in-flight deliveries (--shutdown-grace)." }),
  dedupWindow: duration.default(3_600_000).meta({ description: "A repeat of the same (fingerprint, status, startsAt) within this window is counted, not delivered again. 0 turns it off." }),
  retention: duration.default(86_400_000).meta({ description: "How long delivered Issues stay in the state directory (for the feed and `kubecano deliveries`)." }),
  durability: z.enum(["normal", "full"]).default("normal").meta({ description: "normal: survives a crash of kubecano; full: also a power loss of the node (fsync per webhook, slower)." }),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    clusterName: z.string().min(1).max(128).default("default").meta({ description: "Shown on every Issue." }),
    stateDir: z.string().min(1).optional().meta({ description: "Where the durable queue lives (--state-dir, KUBECANO_STATE_DIR; default $XDG_STATE_HOME/kubecano or ~/.local/state/kubecano)." }),
    server: serverSchema.prefault({}),
    delivery: deliverySchema.prefault({}),
    severityMap: z
      .record(z.string().min(1), z.enum(SEVERITIES))
      .default({})
      .meta({ description: "Alertmanager severity label value → Issue severity, on top of the defaults (critical → HIGH, warning → LOW...)." }),
    routes: routesSchema.meta({ description: "Routes pick destinations per Issue, in order; the first match stops unless continue: true." }),
    defaultDestinations: z.array(z.string().min(1)).optional().meta({ description: "Where Issues no route takes go (default: every destination)." }),
    workflows: workflowsSchema.meta({ description: "Workflows: triggers and enrichment actions, run after the built-in ones." }),
    enrichment: enrichmentSchema.prefault({}),
    watch: watchSchema.prefault({}),
    destinations: z
      .array(destinationSchema)
      .min(1, "configure at least one destination")
      .default([{ name: "console", type: "console", params: { format: "text", color: "auto", output: "stdout" } }]),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.destinations.forEach((d, i) => {
      const prev = seen.get(d.name);
      if (prev !== undefined) ctx.addIssue({ code: "custom", path: ["destinations", i, "name"], message: `duplicate destination name "${d.name}" (also destinations[${prev}])` });
      seen.set(d.name, i);
    });
    // A route to a destination that does not exist would drop Issues at 3 a.m.: refuse it now.
    const known = `configured destinations: ${c.destinations.map((d) => d.name).join(", ")}`;
    c.routes.forEach((r, i) =>
      r.destinations.forEach((d, j) => {
        if (!seen.has(d)) ctx.addIssue({ code: "custom", path: ["routes", i, "destinations", j], message: `unknown destination "${d}" (${known})` });
      }),
    );
    (c.defaultDestinations ?? []).forEach((d, j) => {
      if (!seen.has(d)) ctx.addIssue({ code: "custom", path: ["defaultDestinations", j], message: `unknown destination "${d}" (${known})` });
    });
  });

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type DestinationConfig = Config["destinations"][number];
export type ServerConfig = Config["server"];
export type DeliveryConfig = Config["delivery"];

/** The JSON Schema of the config file's input, for `kubecano config schema`. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return { ...schema, title: "kubecano configuration", $id: "https://kubecano.dev/schema/config.json" };
}
