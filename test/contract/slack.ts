import { startSlackFake, type SlackFake } from "../fakes/slack.js";
import type { ContractFake, DestinationContractCase } from "./types.js";

/**
 * Slack in bot mode (chat.postMessage with the fingerprint in message
 * metadata) against the local Slack fake. Slack keeps no incidents: a
 * resolution is one more message. test/contract/slack-webhook.ts runs the
 * incoming-webhook mode.
 */
export const contractCase: DestinationContractCase = {
  type: "slack",
  http: true,
  resolves: false,
  async start() {
    const token = "xoxb-contract-4b7e2d9a1c8f3e60";
    const slack = await startSlackFake({ tokens: [token] });
    return slackContractFake(slack, { token, channel: slack.channelId, api_url: slack.url }, [token], (m) => m.metadata?.event_payload["fingerprint"]);
  },
};

/** The ContractFake view of a Slack fake; `fingerprintOf` reads a stored message's fingerprint. */
export function slackContractFake(
  slack: SlackFake,
  params: Record<string, unknown>,
  secrets: readonly string[],
  fingerprintOf: (m: SlackFake["messages"][number]) => unknown,
): ContractFake {
  const posts = ["chat.postMessage", "webhook"];
  return {
    params,
    secrets,
    failNext: (status, opts) => void slack.failNext(opts?.count ?? 1, { status, method: posts, ...(opts?.retryAfterSeconds !== undefined ? { retryAfter: opts.retryAfterSeconds } : {}) }),
    hangNext: () => void slack.hang({ count: 1, method: posts }),
    // Top-level messages open, thread replies and edits update: Slack has nothing that resolves.
    received: (fingerprint) => slack.messages.filter((m) => fingerprintOf(m) === fingerprint).map((m) => (m.thread_ts === undefined ? "open" : "update")),
    accepted: () => slack.calls.filter((c) => posts.includes(c.method) && c.outcome === "ok").length,
    close: () => slack.close(),
  };
}
