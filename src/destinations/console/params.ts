import { z } from "zod";

export const consoleParamsSchema = z
  .strictObject({
    /** text: a readable block per Issue; json: one JSON line per Issue (NDJSON). */
    format: z.enum(["text", "json"]).default("text"),
    /** auto follows the terminal and NO_COLOR / FORCE_COLOR. */
    color: z.enum(["auto", "always", "never"]).default("auto"),
    /** Where Issues are written. */
    output: z.enum(["stdout", "stderr"]).default("stdout"),
  })
  .meta({ description: "Prints each Issue to the terminal." });

export type ConsoleParams = z.output<typeof consoleParamsSchema>;
