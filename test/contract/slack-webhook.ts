import { startSlackFake } from "../fakes/slack.js";
import { slackContractFake } from "./slack.js";
import type { DestinationContractCase } from "./types.js";

/**
 * Slack through an incoming webhook: no metadata, so the fake finds an
 * Issue's messages by the fingerprint kubecano prints in each message's
 * context line. The webhook URL (and its secret path) is the secret.
 */
export const contractCase: DestinationContractCase = {
  type: "slack",
  http: true,
  resolves: false,
  async start() {
    const slack = await startSlackFake();
    const url = slack.webhookUrl();
    const secretPath = new URL(url).pathname;
    return slackContractFake(slack, { webhook_url: url }, [url, secretPath, secretPath.split("/").pop()!], (m) => {
      const text = JSON.stringify([m.blocks, m.attachments]);
      const match = /fingerprint `([^`]+)`/.exec(text);
      return match?.[1];
    });
  },
};
