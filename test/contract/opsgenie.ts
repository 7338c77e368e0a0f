import { aliasOf } from "../../src/destinations/opsgenie/render.js";
import { OG_FAKE_API_KEY, startOpsgenieFake } from "../fakes/opsgenie.js";
import type { DestinationContractCase } from "./types.js";

/**
 * Opsgenie in the shared sender contract: the Alert API v2 fake, alerts
 * aliased by the Issue fingerprint, a RESOLVED Issue a close by alias.
 */
export const contractCase: DestinationContractCase = {
  type: "opsgenie",
  http: true,
  resolves: true,
  async start() {
    const fake = await startOpsgenieFake();
    return {
      // A short timeout: the hang row waits for it.
      params: { api_key: OG_FAKE_API_KEY, api_url: fake.url, timeout: "2s" },
      secrets: [OG_FAKE_API_KEY],
      failNext: (status, opts) => fake.failNext(status, opts),
      hangNext: () => fake.hangNext(),
      received: (fingerprint) => fake.received(aliasOf(fingerprint)),
      accepted: () => fake.accepted(),
      close: () => fake.close(),
    };
  },
};
