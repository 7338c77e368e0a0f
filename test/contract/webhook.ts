import { startWebhookFake } from "../fakes/webhook.js";
import type { DestinationContractCase } from "./types.js";

/**
 * The webhook destination against the local receiver. Every secret-ish
 * thing is set (a token in the URL's path and query, an HMAC secret, an
 * Authorization header), and the receiver echoes the request in its error
 * bodies, so the no-secrets rows have something to find.
 */
export const contractCase: DestinationContractCase = {
  type: "webhook",
  http: true,
  resolves: true,
  async start() {
    const pathToken = "pth-7f3a9c2e41d84b6a";
    const queryToken = "qry-0b5e8d1c6a2f4e97";
    const bearer = "hook-bearer-5d2c8e1f9a7b3c40";
    const secret = "hmac-secret-3e8b1d7a2c9f4e60";
    const fake = await startWebhookFake({ path: `/hooks/${pathToken}?token=${queryToken}`, secret, authorization: `Bearer ${bearer}`, echoOnError: true });
    return {
      params: { url: fake.url, secret, headers: { Authorization: `Bearer ${bearer}` } },
      secrets: [fake.url, pathToken, queryToken, bearer, secret],
      failNext: (status, opts) => fake.failNext(status, { count: opts?.count ?? 1, ...(opts?.retryAfterSeconds !== undefined ? { retryAfterSeconds: opts.retryAfterSeconds } : {}) }),
      hangNext: () => fake.hangNext(),
      received: (fingerprint) => fake.received(fingerprint),
      accepted: () => fake.accepted(),
      close: () => fake.close(),
    };
  },
};
