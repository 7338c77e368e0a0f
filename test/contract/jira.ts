import { JIRA_TOKEN, JIRA_USER, startJiraFake } from "../fakes/jira.js";
import type { DestinationContractCase } from "./types.js";

/**
 * Jira in the shared sender contract: the Jira Cloud fake, one issue per
 * fingerprint (its label). "open" is an issue created (or reopened),
 * "update" a comment on a repeat, "resolve" the transition into Done;
 * `accepted` counts those writes, not the searches and reads around them.
 */
export const contractCase: DestinationContractCase = {
  type: "jira",
  http: true,
  resolves: true,
  async start() {
    const fake = await startJiraFake();
    return {
      params: { url: fake.url, user: JIRA_USER, api_token: JIRA_TOKEN, project: "OPS", timeout: "2s" },
      secrets: [JIRA_TOKEN, Buffer.from(`${JIRA_USER}:${JIRA_TOKEN}`).toString("base64")],
      failNext: (status, opts) => fake.failNext(status, opts),
      hangNext: () => fake.hangNext(),
      received: (fingerprint) => fake.received(fingerprint),
      accepted: () => fake.accepted(),
      close: () => fake.close(),
    };
  },
};
