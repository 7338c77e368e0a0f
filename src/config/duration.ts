import { z } from "zod";
import { parseDuration } from "../core/duration.js";

export { formatMs, parseDuration } from "../core/duration.js";

/** Zod type for a duration in config: "30s", "5m", or a number of seconds; parses to ms. */
export const duration = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: `invalid duration ${JSON.stringify(v)}: use e.g. "500ms", "30s", "5m", "1h" or a number of seconds` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: 'Duration: "500ms", "30s", "5m", "1h", "1d", or a number of seconds' });
