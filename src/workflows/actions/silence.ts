import { z } from "zod";
import { defineAction } from "../types.js";

export const silence = defineAction({
  name: "silence",
  description: "Drops the Issue: it is recorded, but sent nowhere (Watchdog, InfoInhibitor).",
  kind: "pure",
  params: z.strictObject({ reason: z.string().min(1).optional() }),
  run(p) {
    const reason = p.reason ?? "silenced by a workflow";
    return { silence: reason, note: reason };
  },
});
