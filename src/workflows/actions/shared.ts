import { z } from "zod";
import { compilePatterns, patternProblem } from "../../core/match.js";
import { templateProblem } from "../template.js";

/** Parameter types and helpers several actions share. */

export const patternList = z
  .array(
    z.string().superRefine((p, ctx) => {
      const problem = patternProblem(p);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    }),
  )
  .optional();

/** A template string (see ../template.ts), checked when the config loads. */
export const template = z
  .string()
  .min(1)
  .superRefine((t, ctx) => {
    const problem = templateProblem(t);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });

export const tableParams = z.strictObject({
  include: patternList.meta({ description: "Only keys matching one of these patterns (exact, glob, /regex/)." }),
  exclude: patternList.meta({ description: "Leave out keys matching one of these patterns." }),
  title: z.string().min(1).optional(),
});

const filters = new WeakMap<object, (key: string) => boolean>();

/** The include/exclude predicate of a table action's params, compiled once per params object. */
export function keyFilter(p: z.output<typeof tableParams>): (key: string) => boolean {
  const cached = filters.get(p);
  if (cached !== undefined) return cached;
  const f = compileKeyFilter(p);
  filters.set(p, f);
  return f;
}

function compileKeyFilter(p: z.output<typeof tableParams>): (key: string) => boolean {
  const inc = p.include !== undefined && p.include.length > 0 ? compilePatterns(p.include) : undefined;
  const exc = p.exclude !== undefined && p.exclude.length > 0 ? compilePatterns(p.exclude) : undefined;
  return (k) => (inc === undefined || inc.test(k)) && (exc === undefined || !exc.test(k));
}
