import { z } from "zod";

/**
 * Time windows for routes: `{ timezone: Europe/Warsaw, days: [mon-fri], hours: "08:00-18:00" }`.
 * Days are mon..sun, single or ranges ("mon-fri", "sat-sun", "fri-mon" wraps);
 * hours are "HH:MM-HH:MM", end excluded, wrapping past midnight ("22:00-06:00").
 * A window without days is every day; without hours, the whole day.
 */

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

export const windowSchema = z
  .strictObject({
    timezone: z
      .string()
      .default("UTC")
      .superRefine((tz, ctx) => {
        try {
          new Intl.DateTimeFormat("en-US", { timeZone: tz });
        } catch {
          ctx.addIssue({ code: "custom", message: `unknown timezone "${tz}": use an IANA name like Europe/Warsaw or UTC` });
        }
      }),
    days: z
      .array(z.string().regex(/^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$/i, 'use mon..sun or a range like "mon-fri"'))
      .min(1)
      .optional(),
    hours: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'use "HH:MM-HH:MM", e.g. "08:00-18:00"')
      .optional(),
  })
  .meta({ description: "A weekly time window in a timezone." });

export type WindowConfig = z.output<typeof windowSchema>;

export interface CompiledWindow {
  readonly description: string;
  contains(at: Date): boolean;
  /** "Sat 10:05 Europe/Warsaw": where `at` falls, for explanations. */
  localTime(at: Date): string;
}

export function compileWindow(w: WindowConfig): CompiledWindow {
  const days = new Set<number>();
  for (const d of w.days ?? ["sun-sat"]) {
    const [from, to] = d.toLowerCase().split("-") as [string, string | undefined];
    const a = DAYS.indexOf(from as (typeof DAYS)[number]);
    const b = to !== undefined ? DAYS.indexOf(to as (typeof DAYS)[number]) : a;
    for (let i = a; ; i = (i + 1) % 7) {
      days.add(i);
      if (i === b) break;
    }
  }
  let start = 0;
  let end = 24 * 60;
  if (w.hours !== undefined) {
    const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(w.hours)!;
    start = Number(m[1]) * 60 + Number(m[2]);
    end = Number(m[3]) * 60 + Number(m[4]);
  }
  const fmt = new Intl.DateTimeFormat("en-US", { timeZone: w.timezone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const local = (at: Date): { day: number; minute: number; text: string } => {
    const parts = Object.fromEntries(fmt.formatToParts(at).map((p) => [p.type, p.value]));
    const day = DAYS.indexOf((parts["weekday"] ?? "Sun").toLowerCase().slice(0, 3) as (typeof DAYS)[number]);
    const minute = Number(parts["hour"]) * 60 + Number(parts["minute"]);
    return { day, minute, text: `${parts["weekday"]} ${parts["hour"]}:${parts["minute"]} ${w.timezone}` };
  };
  const description = `${(w.days ?? ["every day"]).join(",")} ${w.hours ?? "all day"} ${w.timezone}`;
  return {
    description,
    localTime: (at) => local(at).text,
    contains(at) {
      const { day, minute } = local(at);
      if (start < end) return days.has(day) && minute >= start && minute < end;
      if (start === end) return days.has(day);
      // Wraps past midnight: the part after midnight belongs to the previous day's window.
      if (minute >= start) return days.has(day);
      return minute < end && days.has((day + 6) % 7);
    },
  };
}
