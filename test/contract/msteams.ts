import { startTeamsFake } from "../fakes/msteams.js";
import type { DestinationContractCase } from "./types.js";

/**
 * Microsoft Teams in the shared sender contract: the Workflows webhook fake.
 * Teams cannot update a posted card, so a RESOLVED Issue is a second card
 * (the fake reads status and fingerprint back from the card).
 */
export const contractCase: DestinationContractCase = {
  type: "msteams",
  http: true,
  resolves: false,
  async start() {
    const fake = await startTeamsFake();
    const url = fake.webhookUrl();
    return {
      params: { webhook_url: url, timeout: "2s" },
      // The whole URL and its signature; the path alone names the flow.
      secrets: [url, fake.signature()],
      failNext: (status, opts) => fake.failNext(status, opts),
      hangNext: () => fake.hangNext(),
      received: (fingerprint) => fake.received(fingerprint),
      accepted: () => fake.accepted(),
      close: () => fake.close(),
    };
  },
};
