import { z } from "zod";
import { duration } from "../../config/duration.js";

const DEFAULT_API_URL = "https://slack.com/api/";

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

/**
 * Two modes: a bot token (chat.postMessage: threads, updates, metadata, files)
 * or an incoming webhook URL (fixed channel, no threads). `api_key` and
 * `slack_channel` are accepted as aliases of `token` and `channel`, the names
 * users of the previous collector already have in their values files.
 */
export const slackParamsSchema = z
  .strictObject({
    token: z.string().min(1).optional().meta({ description: "Bot token (xoxb-...). Secret." }),
    api_key: z.string().min(1).optional().meta({ description: "Alias of token." }),
    channel: z.string().min(1).optional().meta({ description: "Channel name (#alerts) or, better, its ID (C0123...)." }),
    slack_channel: z.string().min(1).optional().meta({ description: "Alias of channel." }),
    webhook_url: httpUrl.optional().meta({ description: "Incoming webhook URL, instead of a token. Secret." }),
    username: z.string().min(1).max(80).optional(),
    icon_emoji: z.string().regex(/^:[\w+-]+:$/, "expected an emoji like :rotating_light:").optional(),
    api_url: httpUrl.optional().meta({ description: `Slack Web API base URL (default ${DEFAULT_API_URL}); for proxies and tests.` }),
    timeout: duration.default(10_000).meta({ description: "Per-request timeout (default 10s)." }),
  })
  .superRefine((p, ctx) => {
    if (p.token !== undefined && p.api_key !== undefined) ctx.addIssue({ code: "custom", path: ["api_key"], message: "set either token or its alias api_key, not both" });
    if (p.channel !== undefined && p.slack_channel !== undefined) ctx.addIssue({ code: "custom", path: ["slack_channel"], message: "set either channel or its alias slack_channel, not both" });
    const token = p.token ?? p.api_key;
    const channel = p.channel ?? p.slack_channel;
    if (token === undefined && p.webhook_url === undefined) {
      ctx.addIssue({ code: "custom", path: ["token"], message: "set token (a bot token, with channel) or webhook_url (an incoming webhook)" });
    }
    if (token !== undefined && p.webhook_url !== undefined) ctx.addIssue({ code: "custom", path: ["webhook_url"], message: "set either token or webhook_url, not both" });
    if (token !== undefined && channel === undefined) ctx.addIssue({ code: "custom", path: ["channel"], message: "is required with token: the channel to post to" });
  })
  .transform((p) => {
    const token = p.token ?? p.api_key;
    const channel = p.channel ?? p.slack_channel;
    return {
      mode: token !== undefined ? ("bot" as const) : ("webhook" as const),
      ...(token !== undefined ? { token } : {}),
      ...(channel !== undefined ? { channel } : {}),
      ...(p.webhook_url !== undefined ? { webhook_url: p.webhook_url } : {}),
      ...(p.username !== undefined ? { username: p.username } : {}),
      ...(p.icon_emoji !== undefined ? { icon_emoji: p.icon_emoji } : {}),
      api_url: withTrailingSlash(p.api_url ?? DEFAULT_API_URL),
      timeout: p.timeout,
    };
  })
  .meta({ description: "Slack: a bot token and channel, or an incoming webhook URL." });

export type SlackParams = z.output<typeof slackParamsSchema>;

function withTrailingSlash(u: string): string {
  return u.endsWith("/") ? u : `${u}/`;
}
