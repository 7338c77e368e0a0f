/**
 * Routing (src/routing/): every matcher, exclude, first match and continue,
 * defaultDestinations, active and mute windows in time zones (DST days,
 * hours past midnight, day ranges that wrap), each decision's explanation,
 * config errors with their paths, and the pipeline's rule that a resolution
 * also goes wherever its firing notification went.
 */
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import { configSchema, type ConfigInput } from "../../src/config/schema.js";
import { createIssue, type Issue, type NewIssue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { ConfigError } from "../../src/errors.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Pipeline } from "../../src/pipeline.js";
import { Router, type RoutingResult } from "../../src/routing/router.js";
import { routesSchema } from "../../src/routing/schema.js";
import { compileWindow, windowSchema } from "../../src/routing/window.js";

const MON_NOON_UTC = new Date("2026-03-02T12:00:00Z"); // a Monday

function issue(over: Partial<NewIssue> & { labels?: Record<string, string> } = {}): Issue {
  const { labels, ...rest } = over;
  return createIssue({
    title: "t",
    aggregationKey: "KubePodCrashLooping",
    severity: "HIGH",
    status: "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "payments-api", pod: "api-1", team: "payments", ...labels }),
    startsAt: "2026-03-02T11:00:00Z",
    clusterName: "c",
    ...rest,
  });
}

function router(routes: unknown[], defaults: string[] = ["default"], explicit = true): Router {
  return new Router(routesSchema.parse(routes), defaults, explicit);
}

/** Destinations for one route `match` (and optional extras), "none" when it does not take the Issue. */
function takes(match: Record<string, unknown>, i: Issue, extra: Record<string, unknown> = {}, at = MON_NOON_UTC): boolean {
  return router([{ name: "r", match, destinations: ["d"], ...extra }], [], true).route(i, at).destinations.includes("d");
}

describe("matchers", () => {
  it.each([
    ["exact", "payments-api", true],
    ["other exact", "payments", false],
    ["glob", "payments-*", true],
    ["glob with ?", "payments-ap?", true],
    ["glob not matching", "shop-*", false],
    ["regex", "/^pay.*-api$/", true],
    ["regex, case-insensitive flag", "/^PAYMENTS/i", true],
    ["negation", "!=kube-system", true],
    ["negated glob", "!=payments-*", false],
    ["list: any of them", ["shop", "payments-*"], true],
    ["list of negations: none of them", ["!=shop", "!=payments-api"], false],
  ])("namespaces: %s", (_name, namespaces, expected) => {
    expect(takes({ namespaces }, issue())).toBe(expected);
  });

  it("namespaces falls back to the namespace label of cluster-scoped subjects", () => {
    const node = issue({ subject: subjectFromLabels({ alertname: "KubeNodeNotReady", node: "worker-1", namespace: "monitoring" }) });
    expect(node.subject.namespace).toBeUndefined();
    expect(takes({ namespaces: "monitoring" }, node)).toBe(true);
    const none = issue({ subject: subjectFromLabels({ alertname: "Watchdog" }) });
    expect(takes({ namespaces: "*" }, none)).toBe(false);
    expect(takes({ namespaces: "!=kube-system" }, none)).toBe(true);
  });

  it.each([
    [{ team: "payments" }, true],
    [{ team: "shop" }, false],
    [{ team: "!=shop" }, true],
    [{ team: "!=payments" }, false],
    [{ team: "pay*" }, true],
    [{ team: "/^(payments|billing)$/" }, true],
    [{ team: "payments", pod: "api-*" }, true],
    [{ team: "payments", pod: "web-*" }, false],
    [{ missing: "x" }, false],
    [{ missing: "!=x" }, true],
    [{ team: ["shop", "payments"] }, true],
  ])("labels %j", (labels, expected) => {
    expect(takes({ labels }, issue())).toBe(expected);
  });

  it("severity, alert_names, reasons, sources, types and status each narrow the route", () => {
    const i = issue();
    expect(takes({ severity: "HIGH" }, i)).toBe(true);
    expect(takes({ severity: ["LOW", "INFO"] }, i)).toBe(false);
    expect(takes({ alert_names: "KubePod*" }, i)).toBe(true);
    expect(takes({ alert_names: "KubeNodeNotReady" }, i)).toBe(false);
    expect(takes({ reasons: "KubePodCrashLooping" }, i)).toBe(true);
    // alert_names and reasons are one list: either may name it.
    expect(takes({ alert_names: "Nope", reasons: "KubePodCrashLooping" }, i)).toBe(true);
    expect(takes({ sources: "prometheus" }, i)).toBe(true);
    expect(takes({ sources: ["kubernetes", "helm"] }, i)).toBe(false);
    expect(takes({ types: "alert" }, i)).toBe(true);
    expect(takes({ types: "event" }, i)).toBe(false);
    expect(takes({ status: "firing" }, i)).toBe(true);
    expect(takes({ status: "resolved" }, i)).toBe(false);
    expect(takes({ status: "resolved" }, issue({ status: "RESOLVED" }))).toBe(true);
    expect(takes({ status: "all" }, issue({ status: "RESOLVED" }))).toBe(true);
    expect(takes({}, i)).toBe(true);
  });

  it("every field given must match", () => {
    expect(takes({ namespaces: "payments-*", labels: { team: "payments" }, severity: "HIGH" }, issue())).toBe(true);
    expect(takes({ namespaces: "payments-*", labels: { team: "payments" }, severity: "LOW" }, issue())).toBe(false);
  });

  it("a route without exclude excludes nothing (an absent exclude once parsed to {}, which excluded every Issue)", () => {
    expect(routesSchema.parse([{ name: "r", destinations: ["d"] }])[0]!.exclude).toBeUndefined();
    expect(router([{ name: "r", destinations: ["d"] }]).route(issue()).destinations).toEqual(["d"]);
  });

  it("exclude takes back what match took", () => {
    expect(takes({ namespaces: "payments-*" }, issue(), { exclude: { alert_names: "KubePod*" } })).toBe(false);
    expect(takes({ namespaces: "payments-*" }, issue(), { exclude: { alert_names: "Watchdog" } })).toBe(true);
    expect(takes({ namespaces: "payments-*" }, issue(), { exclude: { labels: { team: "payments" }, severity: "LOW" } })).toBe(true);
  });
});

describe("route order, continue and defaults", () => {
  const routes = [
    { name: "payments", match: { namespaces: "payments-*" }, destinations: ["slack-payments", "pager"] },
    { name: "high", match: { severity: "HIGH" }, destinations: ["pager", "slack-high"] },
    { name: "everything", match: {}, destinations: ["archive"] },
  ];

  it("the first match stops; later routes are not tried, and say so", () => {
    const r = router(routes).route(issue(), MON_NOON_UTC);
    expect(r.destinations).toEqual(["slack-payments", "pager"]);
    expect(r.why).toBe("route payments");
    expect(r.decisions.map((d) => [d.route, d.matched, d.why])).toEqual([
      ["payments", true, "matched namespace=payments-*"],
      ["high", false, "not tried: payments matched first"],
      ["everything", false, "not tried: payments matched first"],
    ]);
  });

  it("continue: true keeps trying, and destinations are collected once, in order", () => {
    const r = router([{ ...routes[0], continue: true }, { ...routes[1], continue: true }, routes[2]]).route(issue(), MON_NOON_UTC);
    expect(r.destinations).toEqual(["slack-payments", "pager", "slack-high", "archive"]);
    expect(r.why).toBe("routes payments, high, everything");
  });

  it("a route that does not match says why", () => {
    const r = router(routes).route(issue({ severity: "LOW", labels: { namespace: "shop" } }), MON_NOON_UTC);
    expect(r.decisions[0]!.why).toBe('namespace "shop" does not match payments-*');
    expect(r.decisions[1]!.why).toBe('severity "LOW" does not match HIGH');
    expect(r.destinations).toEqual(["archive"]);
  });

  it("nothing matched: defaultDestinations, or every destination when they are not set", () => {
    const miss = issue({ labels: { namespace: "shop" }, severity: "LOW" });
    const only = [routes[0]!];
    expect(router(only, ["fallback"], true).route(miss)).toMatchObject({ destinations: ["fallback"], why: "no route matched: defaultDestinations" });
    expect(router(only, ["a", "b"], false).route(miss)).toMatchObject({ destinations: ["a", "b"], why: "no route matched and no defaultDestinations: every destination" });
    expect(router([], ["a", "b"], false).route(miss)).toMatchObject({ destinations: ["a", "b"], why: "no routes configured: every destination" });
    expect(router([], ["x"], true).route(miss)).toMatchObject({ destinations: ["x"], why: "no routes configured: defaultDestinations" });
  });

  it("the pipeline uses defaultDestinations when set and every destination otherwise", () => {
    const destinations = [
      { name: "a", type: "console" as const },
      { name: "b", type: "console" as const },
    ];
    const route = (c: Partial<ConfigInput>) => new Pipeline({ config: configSchema.parse({ destinations, ...c }), log: silentLogger() }).route(issue());
    expect(route({})).toEqual(["a", "b"]);
    expect(route({ defaultDestinations: ["b"] })).toEqual(["b"]);
    expect(route({ defaultDestinations: [] })).toEqual([]);
    expect(route({ routes: [{ name: "r", match: { namespaces: "payments-*" }, destinations: ["a"] }], defaultDestinations: ["b"] })).toEqual(["a"]);
  });
});

describe("windows", () => {
  const win = (w: unknown) => compileWindow(windowSchema.parse(w));

  it("office hours in Europe/Warsaw follow the clock change (DST starts 2026-03-29)", () => {
    const w = win({ timezone: "Europe/Warsaw", days: ["mon-fri"], hours: "08:00-18:00" });
    // Friday 27 March, CET (UTC+1): 07:30Z is 08:30 local.
    expect(w.contains(new Date("2026-03-27T07:30:00Z"))).toBe(true);
    expect(w.contains(new Date("2026-03-27T06:30:00Z"))).toBe(false);
    // Monday 30 March, CEST (UTC+2): 06:30Z is 08:30 local, 05:30Z is 07:30.
    expect(w.contains(new Date("2026-03-30T06:30:00Z"))).toBe(true);
    expect(w.contains(new Date("2026-03-30T05:30:00Z"))).toBe(false);
    expect(w.contains(new Date("2026-03-30T15:59:00Z"))).toBe(true);
    expect(w.contains(new Date("2026-03-30T16:00:00Z"))).toBe(false);
    expect(w.localTime(new Date("2026-03-30T06:30:00Z"))).toBe("Mon 08:30 Europe/Warsaw");
    // Sunday 29 March, the change itself: 01:30Z is 03:30 CEST, a weekend.
    expect(w.contains(new Date("2026-03-29T09:00:00Z"))).toBe(false);
  });

  it("the repeated hour of a fall-back day (America/New_York, 2026-11-01) is inside both times", () => {
    const w = win({ timezone: "America/New_York", hours: "01:00-02:00" });
    expect(w.contains(new Date("2026-11-01T05:30:00Z"))).toBe(true); // 01:30 EDT
    expect(w.contains(new Date("2026-11-01T06:30:00Z"))).toBe(true); // 01:30 EST, again
    expect(w.contains(new Date("2026-11-01T07:30:00Z"))).toBe(false); // 02:30 EST
  });

  it("hours past midnight belong to the day they start on", () => {
    const w = win({ timezone: "UTC", days: ["fri"], hours: "22:00-06:00" });
    expect(w.contains(new Date("2026-03-06T23:00:00Z"))).toBe(true); // Fri 23:00
    expect(w.contains(new Date("2026-03-07T05:59:00Z"))).toBe(true); // Sat 05:59, Friday's night
    expect(w.contains(new Date("2026-03-07T06:00:00Z"))).toBe(false); // end excluded
    expect(w.contains(new Date("2026-03-07T23:00:00Z"))).toBe(false); // Sat 23:00
    expect(w.contains(new Date("2026-03-06T05:00:00Z"))).toBe(false); // Fri 05:00 is Thursday's night
    expect(w.contains(new Date("2026-03-06T21:59:00Z"))).toBe(false);
  });

  it("day ranges wrap past Sunday: fri-mon", () => {
    const w = win({ timezone: "UTC", days: ["fri-mon"] });
    const days = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08"].map((d) => w.contains(new Date(`${d}T12:00:00Z`)));
    expect(days).toEqual([true, false, false, false, true, true, true]); // Mon..Sun
  });

  it("days are read in the window's time zone, not UTC", () => {
    const w = win({ timezone: "Pacific/Auckland", days: ["sat-sun"] });
    // Friday 2026-03-06 12:00Z is Saturday 01:00 in Auckland (UTC+13).
    expect(w.contains(new Date("2026-03-06T12:00:00Z"))).toBe(true);
    expect(w.localTime(new Date("2026-03-06T12:00:00Z"))).toBe("Sat 01:00 Pacific/Auckland");
  });

  it("an active window takes the route out of play outside it, a mute window inside it; both explained", () => {
    const routes = [
      { name: "office", match: {}, destinations: ["slack"], active: { timezone: "Europe/Warsaw", days: ["mon-fri"], hours: "08:00-18:00" } },
      { name: "quiet", match: {}, destinations: ["pager"], mute: { timezone: "UTC", hours: "22:00-06:00" } },
    ];
    const r = router(routes, ["fallback"]);
    const sat = new Date("2026-03-07T09:05:00Z");
    expect(r.route(issue(), sat).decisions[0]!.why).toBe("outside its active window mon-fri 08:00-18:00 Europe/Warsaw (now Sat 10:05 Europe/Warsaw)");
    expect(r.route(issue(), sat).destinations).toEqual(["pager"]);
    const night = new Date("2026-03-07T23:30:00Z");
    const atNight = r.route(issue(), night);
    expect(atNight.decisions[1]!.why).toBe("muted: inside every day 22:00-06:00 UTC (now Sat 23:30 UTC)");
    expect(atNight.destinations).toEqual(["fallback"]);
    const mon = r.route(issue(), new Date("2026-03-02T09:00:00Z"));
    expect(mon.destinations).toEqual(["slack"]);
    expect(mon.decisions[0]!.why).toBe("matched everything, inside mon-fri 08:00-18:00 Europe/Warsaw");
  });

  it("a matched route's explanation names its matchers, exclude and window", () => {
    const r = router([{ name: "r", match: { namespaces: ["payments-*", "billing"], labels: { team: "!=shop" }, status: "firing" }, exclude: { severity: "DEBUG" }, active: { hours: "00:00-24:00" }, destinations: ["d"] }]);
    expect(r.route(issue(), MON_NOON_UTC).decisions[0]!.why).toBe("matched namespace=[payments-*, billing] labels.team=!=shop status=firing, not excluded (severity=DEBUG), inside every day 00:00-24:00 UTC");
    expect(r.route(issue({ severity: "DEBUG" }), MON_NOON_UTC).decisions[0]!.why).toBe("excluded: severity=DEBUG");
    expect(r.route(issue({ status: "RESOLVED" }), MON_NOON_UTC).decisions[0]!.why).toBe("status resolved is not firing");
    expect(r.route(issue({ labels: { team: "shop" } }), MON_NOON_UTC).decisions[0]!.why).toBe('labels.team "shop" does not match !=shop');
    expect(r.route(issue({ subject: subjectFromLabels({ alertname: "x" }) }), MON_NOON_UTC).decisions[0]!.why).toBe("namespace is not set (wanted [payments-*, billing])");
  });
});

describe("config errors", () => {
  const destinations = [
    { name: "slack", type: "console" },
    { name: "pager", type: "console" },
  ];
  async function problems(raw: Record<string, unknown>): Promise<string[]> {
    try {
      await validateConfig({ destinations, ...raw }, undefined, {});
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return [...(e as ConfigError).problems];
    }
    return [];
  }

  it("accepts a valid routing config (the control)", async () => {
    expect(await problems({ routes: [{ name: "r", match: { namespaces: "payments-*" }, destinations: ["slack", "pager"], active: { timezone: "Europe/Warsaw", days: ["mon-fri", "sun"], hours: "08:00-18:00" } }], defaultDestinations: ["slack"] })).toEqual([]);
  });

  it.each([
    [{ routes: [{ name: "r", destinations: ["slack", "pagerduty"] }] }, /routes\[0\]\.destinations\[1\]: unknown destination "pagerduty" \(configured destinations: slack, pager\)/],
    [{ defaultDestinations: ["slack", "nope"] }, /defaultDestinations\[1\]: unknown destination "nope"/],
    [{ routes: [{ name: "r", destinations: ["slack"], active: { timezone: "Europe/Atlantis" } }] }, /routes\[0\]\.active\.timezone: unknown timezone "Europe\/Atlantis": use an IANA name/],
    [{ routes: [{ name: "r", destinations: ["slack"], mute: { hours: "8-18" } }] }, /routes\[0\]\.mute\.hours: use "HH:MM-HH:MM"/],
    [{ routes: [{ name: "r", destinations: ["slack"], mute: { hours: "08:00-24:30" } }] }, /routes\[0\]\.mute\.hours/],
    [{ routes: [{ name: "r", destinations: ["slack"], active: { days: ["weekdays"] } }] }, /routes\[0\]\.active\.days\[0\]: use mon\.\.sun/],
    [{ routes: [{ name: "r", destinations: ["slack"] }, { name: "r", destinations: ["pager"] }] }, /routes\[1\]\.name: duplicate route name "r" \(also routes\[0\]\)/],
    [{ routes: [{ name: "r", destinations: ["slack"], match: { namespaces: ["ok", "/(/"] } }] }, /routes\[0\]\.match\.namespaces\[1\]: invalid pattern "\/\(\/"/],
    [{ routes: [{ name: "r", destinations: ["slack"], match: { namespace: "x" } }] }, /routes\[0\]\.match\.namespace: unknown key "namespace"/],
    [{ routes: [{ name: "r", destinations: [] }] }, /routes\[0\]\.destinations/],
  ])("refuses %j with its path", async (raw, re) => {
    const p = await problems(raw);
    expect(p.some((x) => re.test(x)), p.join("\n")).toBe(true);
  });
});

describe("a resolution follows its firing notification (Pipeline.routeExplained with state)", () => {
  function pipeline(at: { now: Date }, withState = true) {
    const store = new Map<string, string>();
    const config = configSchema.parse({
      destinations: ["slack-default", "pager", "slack-payments"].map((name) => ({ name, type: "console" })),
      routes: [{ name: "office-pager", match: { namespaces: "payments-*" }, destinations: ["pager", "slack-payments"], active: { timezone: "UTC", hours: "08:00-18:00" } }],
      defaultDestinations: ["slack-default"],
    });
    return {
      store,
      p: new Pipeline({
        config,
        log: silentLogger(),
        now: () => at.now,
        ...(withState ? { state: { getState: (ns: string, k: string) => store.get(`${ns}/${k}`), setState: (ns: string, k: string, v: string | undefined) => void (v === undefined ? store.delete(`${ns}/${k}`) : store.set(`${ns}/${k}`, v)) } } : {}),
      }),
    };
  }

  it("fired inside the window, resolved after it closed: also goes to the pager, once", () => {
    const at = { now: new Date("2026-03-02T17:00:00Z") };
    const { p, store } = pipeline(at);
    const firing = issue({ fingerprint: "fp-1" });
    expect(p.routeExplained(firing).destinations).toEqual(["pager", "slack-payments"]);
    at.now = new Date("2026-03-02T19:00:00Z");
    const resolved = issue({ fingerprint: "fp-1", status: "RESOLVED", endsAt: "2026-03-02T18:30:00Z" });
    const r: RoutingResult = p.routeExplained(resolved);
    expect(r.destinations).toEqual(["slack-default", "pager", "slack-payments"]);
    expect(r.why).toBe("no route matched: defaultDestinations; plus pager, slack-payments, where it fired");
    expect(store.size).toBe(0);
    // Remembered once: a second resolution (an Alertmanager repeat) goes where the routes say.
    expect(p.routeExplained(resolved).destinations).toEqual(["slack-default"]);
  });

  it("adds nothing the routes already chose, and nothing for another fingerprint", () => {
    const at = { now: new Date("2026-03-02T10:00:00Z") };
    const { p } = pipeline(at);
    p.routeExplained(issue({ fingerprint: "fp-2" }));
    const same = p.routeExplained(issue({ fingerprint: "fp-2", status: "RESOLVED" }));
    expect(same.destinations).toEqual(["pager", "slack-payments"]);
    expect(same.why).toBe("route office-pager");
    at.now = new Date("2026-03-02T20:00:00Z");
    expect(p.routeExplained(issue({ fingerprint: "fp-other", status: "RESOLVED" })).destinations).toEqual(["slack-default"]);
  });

  it("without state (one-shot commands) the routes alone decide", () => {
    const at = { now: new Date("2026-03-02T10:00:00Z") };
    const { p } = pipeline(at, false);
    p.routeExplained(issue({ fingerprint: "fp-3" }));
    at.now = new Date("2026-03-02T20:00:00Z");
    expect(p.routeExplained(issue({ fingerprint: "fp-3", status: "RESOLVED" })).destinations).toEqual(["slack-default"]);
  });
});
