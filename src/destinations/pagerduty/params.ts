import { z } from "zod";
import { duration } from "../../config/duration.js";
import { template } from "../../workflows/actions/shared.js";

export const DEFAULT_PAGERDUTY_API_URL = "https://events.pagerduty.com";

/** The severities the Events API v2 accepts in payload.severity. */
export const PAGERDUTY_SEVERITIES = ["critical", "error", "warning", "info"] as const;
export type PagerDutySeverity = (typeof PAGERDUTY_SEVERITIES)[number];

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });
const pdSeverity = z.enum(PAGERDUTY_SEVERITIES);

/**
 * PagerDuty Events API v2. The routing key is the Integration Key of an
 * "Events API v2" integration on a service (or of a ruleset): 32 letters and
 * digits. A REST API token does not work here, so a wrong kind of key is
 * refused when the config loads rather than at 3 a.m.
 */
export const pagerdutyParamsSchema = z
  .strictObject({
    routing_key: z
      .string()
      .regex(/^[A-Za-z0-9]{32}$/, "expected the 32-character Integration Key of an Events API v2 integration (Service → Integrations), not a REST API token")
      .meta({ description: "Integration Key of an Events API v2 integration (32 characters). Secret: use ${PAGERDUTY_ROUTING_KEY}." }),
    api_url: httpUrl.default(DEFAULT_PAGERDUTY_API_URL).meta({ description: `Events API base URL (default ${DEFAULT_PAGERDUTY_API_URL}); events go to {api_url}/v2/enqueue.` }),
    timeout: duration.default(10_000).meta({ description: "Per-request timeout (default 10s)." }),
    source: template.max(1024).optional().meta({ description: "payload.source template (default: cluster name and subject, e.g. prod/shop/pod/api-7d9f)." }),
    component: template.max(1024).optional().meta({ description: "payload.component template (default: the container, else the subject's name)." }),
    group: template.max(1024).optional().meta({ description: "payload.group template (default: the namespace)." }),
    class: template.max(1024).optional().meta({ description: "payload.class template (default: the alert name / event reason)." }),
    severity_map: z
      .strictObject({ HIGH: pdSeverity.optional(), LOW: pdSeverity.optional(), INFO: pdSeverity.optional(), DEBUG: pdSeverity.optional() })
      .optional()
      .meta({ description: "Issue severity → PagerDuty severity, over the defaults HIGH → critical, LOW → warning, INFO and DEBUG → info." }),
  })
  .transform((p) => ({ ...p, api_url: p.api_url.replace(/\/+$/, "") }))
  .meta({ description: "PagerDuty Events API v2: a FIRING Issue triggers an alert keyed by its fingerprint, the RESOLVED one resolves it." });

export type PagerDutyParams = z.output<typeof pagerdutyParamsSchema>;
