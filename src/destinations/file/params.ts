import { z } from "zod";

/**
 * Appends each Issue to a file as one JSON line (NDJSON): the same
 * kubecano.issue/v1 document the webhook destination sends, so
 * `kubecano replay FILE` reads it back.
 */
export const fileParamsSchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .refine((p) => !p.includes("\0"), { message: "must not contain NUL" })
      .meta({ description: "File to append to. ~ is your home directory; a relative path is relative to the config file's directory. Parent directories are created." }),
    mode: z.enum(["append"]).default("append").meta({ description: "append (the only mode): one line per Issue, never rewritten." }),
  })
  .meta({ description: "Appends each Issue as one kubecano.issue/v1 JSON line (NDJSON) to a file." });

export type FileParams = z.output<typeof fileParamsSchema>;
