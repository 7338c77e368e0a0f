import { dedupKey } from "../../src/destinations/pagerduty/render.js";
import { PD_FAKE_ROUTING_KEY, startPagerDutyFake } from "../fakes/pagerduty.js";
import type { DestinationContractCase } from "./types.js";

/**
 * PagerDuty in the shared sender contract: the Events API v2 fake, events
 * keyed by the Issue fingerprint (dedup_key), a RESOLVED Issue a resolve.
 */
export const contractCase: DestinationContractCase = {
  type: "pagerduty",
  http: true,
  resolves: true,
  async start() {
    const fake = await startPagerDutyFake();
    return {
      // A short timeout: the hang row waits for it.
      params: { routing_key: PD_FAKE_ROUTING_KEY, api_url: fake.url, timeout: "2s" },
      secrets: [PD_FAKE_ROUTING_KEY],
      failNext: (status, opts) => fake.failNext(status, opts),
      hangNext: () => fake.hangNext(),
      received: (fingerprint) => fake.received(dedupKey(fingerprint)),
      accepted: () => fake.accepted(),
      close: () => fake.close(),
    };
  },
};
