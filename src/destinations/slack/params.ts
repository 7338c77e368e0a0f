import { z } from "zod";
import { duration } from "../../config/duration.js";
import { templateProblem } from "../../workflows/template.js";

const DEFAULT_API_URL = "https://slack.com/api/";

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

/** A Slack mention as it is written in mrkdwn: a user, a user group, or a broadcast. */
export const MENTION_RE = /^<(?:@[UW][A-Z0-9]{2,}|!subteam\^[A-Z0-9]{2,}|!here|!channel|!everyone)>$/;

const mention = z.string().regex(MENTION_RE, 'expected a Slack mention like "<@U0123ABCD>", "<!subteam^S0123ABCD>" or "<!here>"');

const stormSchema = z
  .strictObject({
    threshold: z.number().int().min(2).max(10_000).default(20).meta({ description: "Waiting messages of one channel past which it enters storm mode (default 20)." }),
    update_interval: duration.default(2_000).meta({ description: "How often the storm summary is edited as more alerts arrive (default 2s)." }),
    quiet: duration.default(30_000).meta({ description: "The storm ends after this long without a new alert once the backlog is under half the threshold (default 30s)." }),
  })
  .meta({ description: "Storm mode: waiting alerts of a busy channel are folded into one summary message edited in place." });

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
    channel: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Channel name (#alerts) or, better, its ID (C0123...); may be a template over labels and annotations ("#alerts-{{ labels.team }}").' }),
    slack_channel: z.string().min(1).optional().meta({ description: "Alias of channel." }),
    fallback_channel: z
      .string()
      .min(1)
      .optional()
      .meta({ description: "Where an Issue goes when the channel template names a missing or empty value, or a channel Slack does not know." }),
    webhook_url: httpUrl.optional().meta({ description: "Incoming webhook URL, instead of a token. Secret." }),
    username: z.string().min(1).max(80).optional(),
    icon_emoji: z.string().regex(/^:[\w+-]+:$/, "expected an emoji like :rotating_light:").optional(),
    mentions: z.array(mention).max(20).optional().meta({ description: "Mentions added to the first message of a FIRING Issue (never to repeats or resolutions)." }),
    files: z.boolean().default(true).meta({ description: "Attach logs and data that do not fit in the message as files in the Issue's thread (bot mode; needs files:write). Default true." }),
    rate_per_second: z.number().positive().max(1000).default(1).meta({ description: "Messages per second per channel kubecano allows itself (default 1: Slack's limit is about 1/s)." }),
    burst: z.number().int().min(1).max(1000).default(3).meta({ description: "Messages a quiet channel may get at once (default 3)." }),
    update_interval: duration.default(2_000).meta({ description: "At most one message edit (chat.update) per channel per this interval (default 2s)." }),
    storm: z.union([z.literal(false), stormSchema]).default({ threshold: 20, update_interval: 2_000, quiet: 30_000 }).meta({ description: "Storm mode settings, or false to turn it off." }),
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
    if (channel !== undefined && channel.includes("{{")) {
      const path = [p.channel !== undefined ? "channel" : "slack_channel"];
      const problem = templateProblem(channel);
      if (problem !== undefined) ctx.addIssue({ code: "custom", path, message: problem });
      if (p.fallback_channel === undefined) ctx.addIssue({ code: "custom", path: ["fallback_channel"], message: "is required when channel is a template: where Issues go when a value it names is missing" });
    }
    if (p.fallback_channel?.includes("{{") === true) ctx.addIssue({ code: "custom", path: ["fallback_channel"], message: "must be a plain channel name or ID, not a template" });
  })
  .transform((p) => {
    const token = p.token ?? p.api_key;
    const channel = p.channel ?? p.slack_channel;
    return {
      mode: token !== undefined ? ("bot" as const) : ("webhook" as const),
      ...(token !== undefined ? { token } : {}),
      ...(channel !== undefined ? { channel } : {}),
      ...(p.fallback_channel !== undefined ? { fallback_channel: p.fallback_channel } : {}),
      ...(p.webhook_url !== undefined ? { webhook_url: p.webhook_url } : {}),
      ...(p.username !== undefined ? { username: p.username } : {}),
      ...(p.icon_emoji !== undefined ? { icon_emoji: p.icon_emoji } : {}),
      ...(p.mentions !== undefined ? { mentions: p.mentions } : {}),
      files: p.files,
      rate_per_second: p.rate_per_second,
      burst: p.burst,
      update_interval: p.update_interval,
      storm: p.storm,
      api_url: withTrailingSlash(p.api_url ?? DEFAULT_API_URL),
      timeout: p.timeout,
    };
  })
  .meta({ description: "Slack: a bot token and channel, or an incoming webhook URL." });

export type SlackParams = z.output<typeof slackParamsSchema>;

function withTrailingSlash(u: string): string {
  return u.endsWith("/") ? u : `${u}/`;
}
