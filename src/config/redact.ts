import { DESTINATION_TYPES } from "../destinations/registry.js";
import type { Config } from "./schema.js";

export const REDACTED = "[REDACTED]";

/** A copy of the config with every secret replaced, for `config print` and logs. */
export function redactConfig(config: Config): Config {
  const server = config.server.auth === undefined
    ? config.server
    : {
        ...config.server,
        auth: "bearerToken" in config.server.auth
          ? { bearerToken: REDACTED }
          : { basic: { username: config.server.auth.basic.username, password: REDACTED } },
      };
  const destinations = config.destinations.map((d) => {
    const params = { ...(d.params as Record<string, unknown>) };
    for (const key of DESTINATION_TYPES[d.type].secretParams) {
      const v = params[key];
      if (v === undefined) continue;
      // A map of secrets (the webhook's headers) keeps its keys: which header is set is not secret.
      params[key] = typeof v === "object" && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).map((k) => [k, REDACTED])) : REDACTED;
    }
    return { ...d, params } as typeof d;
  });
  return { ...config, server, destinations };
}

/**
 * Returns a function that replaces every occurrence of a secret in a text.
 * Applied to every error message and log line that may carry remote text.
 */
export function makeScrubber(secrets: readonly string[]): (text: string) => string {
  const list = secrets.filter((s) => s.length >= 4);
  if (list.length === 0) return (t) => t;
  return (text: string) => {
    let out = text;
    for (const s of list) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  };
}
