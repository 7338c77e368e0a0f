import { z } from "zod";
import { duration } from "../../config/duration.js";

/** RFC 9110 field-name token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII, space, tab and obs-text: no CR, LF or NUL (header injection). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers kubecano sets itself: a receiver must be able to trust them. */
const RESERVED = /^(content-type|content-length|host|connection|transfer-encoding|user-agent|x-kubecano-.*)$/i;

/**
 * A generic HTTPS webhook: each Issue is one request whose body is a
 * `kubecano.issue/v1` document (docs/webhook-schema.v1.json). The whole
 * `url` is treated as a secret (receivers often put a token in its path or
 * query), and so are `secret` and every header value.
 */
export const webhookParamsSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: "expected an http(s) URL" })
      .meta({ description: "Where to send each Issue. Secret: only scheme://host ever appears in messages. user:password@ in it is sent as Basic auth." }),
    secret: z
      .string()
      .min(16, "use at least 16 characters")
      .optional()
      .meta({ description: "HMAC-SHA256 key: each request is signed (X-Kubecano-Signature, X-Kubecano-Timestamp). Secret." }),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, "is not a valid HTTP header name").refine((n) => !RESERVED.test(n), { message: "is set by kubecano and cannot be overridden" }),
        z.string().regex(HEADER_VALUE, "must not contain line breaks or control characters"),
      )
      .optional()
      .meta({ description: "Extra request headers, e.g. Authorization: Bearer ${HOOK_TOKEN}. Values are secrets." }),
    method: z.enum(["POST", "PUT"]).default("POST"),
    timeout: duration.default(10_000).meta({ description: "Per-request timeout (default 10s)." }),
  })
  .superRefine((p, ctx) => {
    // Refinements run even when url failed its own check.
    if (!URL.canParse(p.url)) return;
    const u = new URL(p.url);
    const hasAuthHeader = Object.keys(p.headers ?? {}).some((k) => k.toLowerCase() === "authorization");
    if ((u.username !== "" || u.password !== "") && hasAuthHeader) {
      // Only the key path in the message: the URL is a secret.
      ctx.addIssue({ code: "custom", path: ["headers"], message: "set either user:password@ in url or an Authorization header, not both" });
    }
  })
  .meta({ description: "A generic webhook: POSTs each Issue as a kubecano.issue/v1 JSON document, optionally HMAC-signed." });

export type WebhookParams = z.output<typeof webhookParamsSchema>;
