/**
 * The terminal UI's frames and keys, rendered by ink into ink-testing-library's
 * fake terminal (100 columns; rows set per test). The data comes from a real
 * IssueStore fed with feed events, the clock is fixed, redraws are not
 * throttled unless a test says so.
 */
import { render } from "ink-testing-library";
import { afterEach, describe, expect, it } from "vitest";
import { createIssue, type Issue } from "../../src/core/issue.js";
import type { Severity } from "../../src/core/severity.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import type { FeedDelivery, FeedIssue } from "../../src/server/feed-protocol.js";
import { App, type AppProps } from "../../src/tui/app.js";
import { LogRing } from "../../src/tui/log-ring.js";
import { IssueStore } from "../../src/tui/store.js";

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const KEY = { up: "\u001b[A", down: "\u001b[B", right: "\u001b[C", left: "\u001b[D", enter: "\r", esc: "\u001b", pageDown: "\u001b[6~", backspace: "\u007f" };

let n = 0;
function issue(o: { severity?: Severity; status?: "FIRING" | "RESOLVED"; title?: string; pod?: string; secondsAgo?: number; enrich?: boolean } = {}): Issue {
  const k = ++n;
  const base = createIssue(
    {
      title: o.title ?? `Issue number ${k}`,
      description: `Pod shop/${o.pod ?? `api-${k}`} restarted 5 times.`,
      aggregationKey: "KubePodCrashLooping",
      severity: o.severity ?? "LOW",
      status: o.status ?? "FIRING",
      source: "prometheus",
      type: "alert",
      subject: subjectFromLabels({ namespace: "shop", pod: o.pod ?? `api-${k}`, container: "api", team: "payments" }),
      startsAt: new Date(NOW - 3_600_000).toISOString(),
      clusterName: "prod-eu",
      fingerprint: `fp${k}`,
      links: [{ name: "Runbook", url: "https://runbooks.example/crashloop", kind: "runbook" }],
      enrichments:
        o.enrich === true
          ? [
              {
                title: "Pod status",
                source: "pod_status",
                blocks: [
                  { type: "table", headers: ["container", "restarts", "reason"], rows: [["api", "5", "CrashLoopBackOff"]] },
                  { type: "file", filename: "api.log", title: "Logs of api (previous)", content: Array.from({ length: 60 }, (_, i) => `log line ${i + 1}`).join("\n") },
                ],
              },
            ]
          : [],
    },
    new Date(NOW - (o.secondsAgo ?? k) * 1000),
  );
  return base;
}

function feed(i: Issue, deliveries: FeedDelivery[] = [{ destination: "slack", state: "sent", attempts: 1 }]): FeedIssue {
  return { issue: i, stage: "routed", deliveries };
}

function storeWith(records: FeedIssue[]): IssueStore {
  const store = new IssueStore();
  store.applySnapshot({ cursor: "e-0", issues: records, counters: { received: records.length, sent: 3, failed: 1, retried: 0, queued: 2, bySeverity: { HIGH: 1, LOW: 2, INFO: 0, DEBUG: 0 } } });
  store.setConnection({ kind: "live", since: NOW });
  return store;
}

type Rendered = ReturnType<typeof render>;
const mounted: Rendered[] = [];
afterEach(() => {
  for (const r of mounted.splice(0)) r.unmount();
});

function mount(store: IssueStore, opts: Partial<AppProps> & { rows?: number; columns?: number } = {}): Rendered & { frame(): string; press(...keys: string[]): Promise<string>; until(check: (f: string) => boolean, what: string): Promise<string> } {
  const { rows = 24, columns, ...props } = opts;
  const r = render(<App store={store} target="http://kubecano:8080" color={false} now={() => NOW} throttleMs={0} tickMs={0} {...props} />);
  mounted.push(r);
  // ink-testing-library's terminal has no height; the App reads rows (and columns) from stdout.
  Object.defineProperty(r.stdout, "rows", { value: rows, writable: true, configurable: true });
  if (columns !== undefined) Object.defineProperty(r.stdout, "columns", { value: columns, writable: true, configurable: true });
  r.stdout.emit("resize");
  const frame = (): string => r.lastFrame() ?? "";
  const until = async (check: (f: string) => boolean, what: string): Promise<string> => {
    for (let i = 0; i < 400; i++) {
      if (check(frame())) return frame();
      await new Promise((res) => setTimeout(res, 5));
    }
    throw new Error(`no frame shows ${what}; last frame:\n${frame()}`);
  };
  const press = async (...keys: string[]): Promise<string> => {
    for (const k of keys) {
      r.stdin.write(k);
      // ink waits a moment after a lone ESC for the rest of a sequence.
      await new Promise((res) => setTimeout(res, k === KEY.esc ? 60 : 5));
    }
    await new Promise((res) => setTimeout(res, 10));
    return frame();
  };
  return Object.assign(r, { frame, press, until });
}

const lines = (f: string): string[] => f.split("\n");
/** The list's rows: lines that start with the selection marker or two spaces and a severity. */
const listRows = (f: string): string[] => lines(f).filter((l) => /^(▶ | {2})(HIGH|LOW|INFO|DEBUG) /.test(l));

describe("the issue list", () => {
  it("shows the newest Issue first with severity, status, age, title, subject and where it went", async () => {
    const a = issue({ severity: "HIGH", title: "API is down", secondsAgo: 5 });
    const b = issue({ status: "RESOLVED", title: "Disk almost full", secondsAgo: 120 });
    const c = issue({ title: "Job failed", secondsAgo: 7200 });
    const store = storeWith([
      feed(a, [{ destination: "slack", state: "sent", attempts: 1 }, { destination: "pagerduty", state: "failed", attempts: 1, error: "invalid routing key" }]),
      { issue: b, stage: "processing", deliveries: [] },
      feed(c, [{ destination: "webhook", state: "retrying", attempts: 2 }]),
    ]);
    const ui = mount(store);
    const f = await ui.until((x) => x.includes("API is down"), "the list");
    expect(lines(f)[0]).toBe("kubecano · http://kubecano:8080 · ● live");
    expect(lines(f)[1]).toContain("HIGH 1  LOW 2  INFO 0  DEBUG 0  │ received 3 · sent 3 · failed 1 · queued 2");
    expect(f).toMatch(/SEV\s+STATUS\s+AGE\s+TITLE\s+SUBJECT\s+DELIVERED/);
    const rows = listRows(f);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/^▶ HIGH\s+FIRING\s+5s\s+API is down\s+shop\/pod\/api-\d+\s+slack ✔ pagerduty ✖/);
    expect(rows[1]).toMatch(/^ {2}LOW\s+RESOLVED\s+2m\s+Disk almost full\s+shop\/pod\/api-\d+\s+enriching…/);
    expect(rows[2]).toMatch(/^ {2}LOW\s+FIRING\s+2h\s+Job failed\s+.*webhook ↻/);
    expect(lines(f).at(-1)).toMatch(/^3 Issues · ↑↓ jk move · ⏎ → open · \/ filter · s severity · f firing · p pause · \? help · q quit/);
    // Every line fits the terminal.
    for (const l of lines(f)) expect(l.length).toBeLessThanOrEqual(100);
  });

  it("moves the selection with arrows and j/k, and keeps it on its Issue when new ones arrive", async () => {
    const records = [issue({ secondsAgo: 1 }), issue({ secondsAgo: 2 }), issue({ secondsAgo: 3 })].map((i) => feed(i));
    const store = storeWith(records);
    const ui = mount(store);
    await ui.until((f) => listRows(f).length === 3, "three rows");
    let f = await ui.press("j", KEY.down);
    expect(listRows(f)[2]).toMatch(/^▶ .*Issue number \d+/);
    const selected = /Issue number \d+/.exec(listRows(f)[2]!)![0];
    f = await ui.press("k");
    expect(listRows(f)[1]).toMatch(/^▶ /);
    f = await ui.press(KEY.down);
    // A newer Issue arrives: the selection stays on the same Issue, one row lower.
    store.applyEvent({ type: "issue", id: "e-1", data: feed(issue({ title: "Brand new", secondsAgo: 0 })) });
    f = await ui.until((x) => x.includes("Brand new"), "the new Issue");
    expect(listRows(f)[0]).toMatch(/Brand new/);
    expect(listRows(f)[3]).toMatch(new RegExp(`^▶ .*${selected}`));
    // Back to the top: the selection follows the newest again.
    f = await ui.press("g");
    expect(listRows(f)[0]).toMatch(/^▶ .*Brand new/);
    store.applyEvent({ type: "issue", id: "e-2", data: feed(issue({ title: "Even newer", secondsAgo: 0 })) });
    f = await ui.until((x) => x.includes("Even newer"), "the newest");
    expect(listRows(f)[0]).toMatch(/^▶ .*Even newer/);
  });

  it("updates rows as deliveries end", async () => {
    const a = issue({ title: "Watch me" });
    const store = storeWith([feed(a, [{ destination: "slack", state: "pending", attempts: 0 }])]);
    const ui = mount(store);
    await ui.until((f) => /Watch me.*slack …/.test(f), "a pending delivery");
    store.applyEvent({ type: "delivery", id: "e-1", data: { issueId: a.id, destination: "slack", state: "sent", attempts: 1 } });
    await ui.until((f) => /Watch me.*slack ✔/.test(f), "the delivery sent");
  });
});

describe("the detail view", () => {
  it("opens with enter or →, shows everything about the Issue, scrolls, and esc or ← goes back", async () => {
    const a = issue({ title: "Crash looping", severity: "HIGH", enrich: true });
    const store = storeWith([
      feed(a, [
        { destination: "slack", state: "sent", attempts: 1 },
        { destination: "pagerduty", state: "failed", attempts: 3, code: "invalid_routing_key", error: "Invalid Routing Key", hint: "check params.routingKey" },
      ]),
    ]);
    const ui = mount(store, { rows: 30 });
    await ui.until((f) => f.includes("Crash looping"), "the list");
    let f = await ui.press(KEY.enter);
    expect(f).toContain("● FIRING  HIGH  Crash looping");
    expect(f).toContain("KubePodCrashLooping · cluster prod-eu · shop/pod/");
    expect(f).toContain("restarted 5 times.");
    expect(f).toMatch(/Labels\n\s+namespace=shop  pod=api-\d+  container=api  team=payments/);
    expect(f).toContain("team=payments");
    expect(f).toMatch(/Runbook\s+https:\/\/runbooks\.example\/crashloop/);
    expect(f).toContain("✔ slack sent after 1 attempt");
    expect(f).toContain("✖ pagerduty failed after 3 attempts");
    expect(f).toContain("[invalid_routing_key] Invalid Routing Key");
    expect(f).toContain("hint: check params.routingKey");
    expect(f).toContain("── Pod status (pod_status)");
    expect(f).toMatch(/container\s+restarts\s+reason\n\s+api\s+5\s+CrashLoopBackOff/);
    expect(f).toMatch(/lines 1-\d+\/\d+/);
    // The log excerpt is further down: scroll.
    expect(f).not.toContain("log line 60");
    f = await ui.press(KEY.pageDown, KEY.pageDown, KEY.pageDown);
    expect(f).toContain("│ log line 60");
    f = await ui.press("k");
    f = await ui.press(KEY.esc);
    expect(listRows(f)[0]).toMatch(/Crash looping/);
    f = await ui.press(KEY.right);
    expect(f).toContain("● FIRING  HIGH  Crash looping");
    f = await ui.press(KEY.left);
    expect(listRows(f)).toHaveLength(1);
  });

  it("follows updates of the open Issue (enrichment arriving, delivery outcomes)", async () => {
    const a = issue({ title: "Slow enrichment" });
    const store = storeWith([{ issue: a, stage: "processing", deliveries: [] }]);
    const ui = mount(store, { rows: 30 });
    await ui.until((f) => f.includes("Slow enrichment"), "the list");
    let f = await ui.press(KEY.enter);
    expect(f).toContain("enriching… workflows and routing have not run yet");
    store.applyEvent({ type: "update", id: "e-1", data: { id: a.id, issue: { ...a, enrichments: [{ title: "Events", blocks: [{ type: "list", items: ["Back-off restarting failed container"] }] }] }, stage: "routed", deliveries: [{ destination: "slack", state: "pending", attempts: 0 }] } });
    f = await ui.until((x) => x.includes("── Events"), "the enrichment");
    expect(f).toContain("• Back-off restarting failed container");
    expect(f).toContain("… slack pending");
  });
});

describe("filters", () => {
  function mixed(): IssueStore {
    return storeWith([
      feed(issue({ severity: "HIGH", title: "high one", pod: "checkout-1", secondsAgo: 1 })),
      feed(issue({ severity: "LOW", title: "low one", pod: "api-9", secondsAgo: 2 })),
      feed(issue({ severity: "INFO", title: "info one", pod: "api-8", status: "RESOLVED", secondsAgo: 3 })),
      feed(issue({ severity: "DEBUG", title: "debug one", pod: "api-7", secondsAgo: 4 })),
    ]);
  }

  it("/ filters by text as it is typed; enter keeps it, esc clears it", async () => {
    const ui = mount(mixed());
    await ui.until((f) => listRows(f).length === 4, "four rows");
    let f = await ui.press("/", "c", "h", "e");
    expect(listRows(f).map((l) => /(\w+) one/.exec(l)![1])).toEqual(["high"]);
    expect(lines(f).at(-1)).toMatch(/^\/che\s+1 of 4 · enter keeps the filter, esc clears it/);
    f = await ui.press(KEY.backspace, KEY.backspace, KEY.backspace, "a", "p", "i", "-", "9", KEY.enter);
    expect(listRows(f).map((l) => /(\w+) one/.exec(l)![1])).toEqual(["low"]);
    expect(lines(f).at(-1)).toMatch(/^filter: "api-9" · 1 of 4 · /);
    // Keys are keys again once the filter is kept: j does not type.
    f = await ui.press("j");
    expect(lines(f).at(-1)).toMatch(/^filter: "api-9"/);
    f = await ui.press(KEY.esc);
    expect(listRows(f)).toHaveLength(4);
  });

  it("counts keys typed in one burst, faster than the screen redraws", async () => {
    const ui = mount(mixed());
    await ui.until((f) => listRows(f).length === 4, "four rows");
    const f = await ui.press("/checkout");
    expect(listRows(f)).toHaveLength(1);
    expect(lines(f).at(-1)).toMatch(/^\/checkout/);
  });

  it("matches labels and destinations too, and says when nothing matches", async () => {
    const ui = mount(mixed());
    await ui.until((f) => listRows(f).length === 4, "four rows");
    let f = await ui.press("/", ..."team=payments", KEY.enter);
    expect(listRows(f)).toHaveLength(4);
    f = await ui.press(KEY.esc, "/", ..."nothing-like-this");
    expect(listRows(f)).toHaveLength(0);
    expect(f).toContain("No Issue matches the filter (esc clears it).");
  });

  it("s cycles the minimum severity: all, INFO, LOW, HIGH, all", async () => {
    const ui = mount(mixed());
    await ui.until((f) => listRows(f).length === 4, "four rows");
    const sevs = (f: string): string[] => listRows(f).map((l) => /(HIGH|LOW|INFO|DEBUG)/.exec(l)![1]!);
    let f = await ui.press("s");
    expect(sevs(f)).toEqual(["HIGH", "LOW", "INFO"]);
    expect(lines(f).at(-1)).toMatch(/^filter: ≥ INFO · 3 of 4/);
    f = await ui.press("s");
    expect(sevs(f)).toEqual(["HIGH", "LOW"]);
    f = await ui.press("s");
    expect(sevs(f)).toEqual(["HIGH"]);
    expect(lines(f).at(-1)).toMatch(/^filter: HIGH only/);
    f = await ui.press("s");
    expect(sevs(f)).toEqual(["HIGH", "LOW", "INFO", "DEBUG"]);
  });

  it("f shows only firing Issues, and combines with the other filters", async () => {
    const ui = mount(mixed());
    await ui.until((f) => listRows(f).length === 4, "four rows");
    let f = await ui.press("f");
    expect(listRows(f)).toHaveLength(3);
    expect(f).not.toContain("info one");
    f = await ui.press("s", "s");
    expect(listRows(f).map((l) => /(\w+) one/.exec(l)![1])).toEqual(["high", "low"]);
    expect(lines(f).at(-1)).toMatch(/^filter: ≥ LOW · firing only · 2 of 4/);
    f = await ui.press("f");
    expect(listRows(f)).toHaveLength(2);
  });
});

describe("pause, help, quit", () => {
  it("p freezes the list and counts what arrives; p again shows it", async () => {
    const store = storeWith([feed(issue({ title: "before" }))]);
    const ui = mount(store);
    await ui.until((f) => f.includes("before"), "the list");
    let f = await ui.press("p");
    expect(lines(f)[0]).toMatch(/❚❚ PAUSED$/);
    store.applyEvent({ type: "issue", id: "e-1", data: feed(issue({ title: "during", secondsAgo: 0 })) });
    store.applyEvent({ type: "issue", id: "e-2", data: feed(issue({ title: "also during", secondsAgo: 0 })) });
    f = await ui.until((x) => x.includes("(+2 new)"), "the count of new Issues");
    expect(f).not.toContain("during");
    f = await ui.press("p");
    expect(lines(f)[0]).not.toContain("PAUSED");
    expect(listRows(f).map((l) => /(also during|during|before)/.exec(l)![1])).toEqual(["also during", "during", "before"]);
  });

  it("? shows the keys; any key closes the help", async () => {
    const ui = mount(storeWith([feed(issue())]), { rows: 30 });
    await ui.until((f) => listRows(f).length === 1, "the list");
    let f = await ui.press("?");
    expect(f).toContain("Keys");
    expect(f).toMatch(/\/\s+filter by text/);
    expect(f).toMatch(/q {2}ctrl-c\s+quit/);
    f = await ui.press("x");
    expect(f).not.toContain("filter by text");
    expect(listRows(f)).toHaveLength(1);
  });

  it("q and ctrl-c quit once", async () => {
    for (const key of ["q", "\u0003"]) {
      let quits = 0;
      const ui = mount(storeWith([feed(issue())]), { onQuit: () => quits++ });
      await ui.until((f) => listRows(f).length === 1, "the list");
      await ui.press(key, key);
      expect(quits, JSON.stringify(key)).toBe(1);
    }
  });
});

describe("size and load", () => {
  it("renders only the rows that fit, with 5,000 Issues", async () => {
    const records = Array.from({ length: 5000 }, (_, i) => feed(issue({ title: `bulk ${i}`, secondsAgo: i + 1 })));
    const store = storeWith(records);
    const ui = mount(store, { rows: 20 });
    // 20 rows: 2 header lines, the column line, 14 Issues, the footer, one line left free.
    let f = await ui.until((x) => x.includes("bulk 0") && listRows(x).length === 14, "the list in 20 rows");
    expect(lines(f).length).toBeLessThanOrEqual(19);
    expect(lines(f).at(-1)).toMatch(/^5000 Issues/);
    f = await ui.press("G");
    expect(listRows(f).at(-1)).toMatch(/^▶ .*bulk 4999/);
    expect(listRows(f)).toHaveLength(14);
    f = await ui.press(KEY.up, KEY.up);
    expect(listRows(f).at(-3)).toMatch(/^▶ .*bulk 4997/);
    f = await ui.press("g");
    expect(listRows(f)[0]).toMatch(/^▶ .*bulk 0/);
    f = await ui.press(KEY.pageDown);
    expect(listRows(f).find((l) => l.startsWith("▶"))).toMatch(/bulk 14\b/);
  });

  it("follows resizes: fewer rows, narrower columns, the subject dropped when narrow", async () => {
    const store = storeWith(Array.from({ length: 50 }, (_, i) => feed(issue({ title: `row ${i}`, secondsAgo: i + 1 }))));
    const ui = mount(store, { rows: 30 });
    let f = await ui.until((x) => x.includes("row 0") && listRows(x).length === 24, "the list in 30 rows");
    expect(f).toContain("SUBJECT");
    Object.defineProperty(ui.stdout, "columns", { value: 70, configurable: true });
    Object.defineProperty(ui.stdout, "rows", { value: 12, configurable: true });
    ui.stdout.emit("resize");
    f = await ui.until((x) => listRows(x).length === 6, "a smaller list");
    expect(f).not.toContain("SUBJECT");
    expect(f).toContain("DELIVERED");
    for (const l of lines(f)) expect(l.length).toBeLessThanOrEqual(70);
  });

  it("redraws at most once per throttle interval for a burst of changes", async () => {
    const store = storeWith([]);
    const ui = mount(store, { throttleMs: 100 });
    await ui.until((f) => f.includes("No Issues yet"), "an empty list");
    const before = ui.frames.length;
    for (let i = 0; i < 500; i++) store.applyEvent({ type: "issue", id: `e-${i}`, data: feed(issue({ title: `burst ${i}`, secondsAgo: 0 })) });
    await ui.until((f) => f.includes("burst 499"), "the burst");
    // 500 changes in one turn: one redraw (ink may add one of its own), not 500.
    expect(ui.frames.length - before).toBeLessThanOrEqual(2);
  });
});

describe("connection and logs", () => {
  it("shows reconnecting with the countdown and the error, and a failure with its hint", async () => {
    const store = storeWith([feed(issue())]);
    const ui = mount(store);
    await ui.until((f) => f.includes("● live"), "live");
    store.setConnection({ kind: "reconnecting", attempt: 2, retryAt: NOW + 4_000, error: "connection refused (is kubecano listen running there?)" });
    let f = await ui.until((x) => x.includes("reconnecting"), "reconnecting");
    expect(lines(f)[0]).toContain("⟳ reconnecting in 4s (connection refused");
    // What was shown stays.
    expect(listRows(f)).toHaveLength(1);
    store.setConnection({ kind: "failed", error: "http://kubecano:8080 refused the credentials (401)", hint: "pass --token" });
    f = await ui.until((x) => x.includes("✖"), "failed");
    expect(lines(f)[0]).toContain("✖ http://kubecano:8080 refused the credentials (401)");
    expect(lines(f)[1]).toBe("  hint: pass --token");
  });

  it("shows the log pane in listen --tui; l hides it", async () => {
    const logs = new LogRing();
    const ui = mount(storeWith([feed(issue())]), { logs, rows: 24 });
    logs.write("13:00:00 INFO  kubecano listening\n13:00:01 WARN  delivery to slack failed, will retry\n");
    let f = await ui.until((x) => x.includes("delivery to slack failed"), "the log lines");
    expect(f).toMatch(/── log ─+/);
    expect(lines(f).at(-1)).toContain("· l log ·");
    f = await ui.press("l");
    expect(f).not.toContain("── log");
  });
});
