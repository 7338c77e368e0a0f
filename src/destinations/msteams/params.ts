import { z } from "zod";
import { duration } from "../../config/duration.js";

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

const mention = z
  .union([
    z.string().min(1),
    z.strictObject({
      id: z.string().min(1).meta({ description: "The person's user principal name (e.g. jane@example.com) or Microsoft Entra object ID." }),
      name: z.string().min(1).max(100).meta({ description: "Display name shown in the mention." }),
    }),
  ])
  .transform((m) => (typeof m === "string" ? { id: m, name: m } : m));

/**
 * Microsoft Teams through a Workflows (Power Automate) webhook: the URL of a
 * flow started by "When a Teams webhook request is received" that posts the
 * Adaptive Card it receives to a channel or chat. The URL carries the flow's
 * signature: a secret.
 */
export const msteamsParamsSchema = z
  .strictObject({
    webhook_url: httpUrl.meta({ description: 'URL of the Teams workflow ("When a Teams webhook request is received" trigger). Secret.' }),
    timeout: duration.default(10_000).meta({ description: "Per-request timeout (default 10s)." }),
    mentions: z
      .array(mention)
      .max(20)
      .default([])
      .meta({ description: "People mentioned (notified) in FIRING cards: an email/UPN, or {id, name}." }),
  })
  .meta({ description: "Microsoft Teams: an Adaptive Card posted through a Workflows webhook." });

export type MsTeamsParams = z.output<typeof msteamsParamsSchema>;
