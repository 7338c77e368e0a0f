import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { tailLines } from "../../src/core/blocks.js";
import { computeFingerprint } from "../../src/core/fingerprint.js";
import { createIssue, formatDuration, isoTime, timeOrderedId, withEnrichment, type NewIssue } from "../../src/core/issue.js";
import { isSeverity, mapSeverity, SEVERITIES, severityRank } from "../../src/core/severity.js";
import { describeSubject, subjectFromLabels } from "../../src/core/subject.js";
import { fit, stripControl, truncate, truncateStart } from "../../src/core/text.js";

/** True when the string has no lone surrogate (is valid UTF-16, so encodable as UTF-8). */
function wellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

describe("subjectFromLabels", () => {
  it("returns an empty subject for no labels", () => {
    expect(subjectFromLabels({})).toEqual({ kind: "", name: "", labels: {}, annotations: {} });
  });

  it("keeps the labels and annotations it was given", () => {
    const labels = { pod: "p", namespace: "n", team: "shop" };
    const annotations = { summary: "s" };
    const s = subjectFromLabels(labels, annotations);
    expect(s.labels).toBe(labels);
    expect(s.annotations).toBe(annotations);
  });

  it("treats Service and PersistentVolumeClaim as namespaced, PersistentVolume and Node as cluster-scoped", () => {
    expect(subjectFromLabels({ service: "web", namespace: "n" })).toMatchObject({ kind: "Service", name: "web", namespace: "n" });
    expect(subjectFromLabels({ persistentvolumeclaim: "data", namespace: "n" })).toMatchObject({ kind: "PersistentVolumeClaim", namespace: "n" });
    expect(subjectFromLabels({ persistentvolume: "pv", namespace: "n" }).namespace).toBeUndefined();
    expect(subjectFromLabels({ node: "n1", namespace: "n" }).namespace).toBeUndefined();
  });

  it("keeps node and container for a pod, and node for a node subject", () => {
    const pod = subjectFromLabels({ pod: "p", node: "n1", container: "c" });
    expect(pod).toMatchObject({ kind: "Pod", node: "n1", container: "c" });
    expect(pod.namespace).toBeUndefined();
    expect(subjectFromLabels({ node: "n1" })).toMatchObject({ kind: "Node", name: "n1", node: "n1" });
  });

  it("does not treat inherited property names as labels", () => {
    // A labels object without Object.prototype (as zod records may be) and one with.
    const bare = Object.assign(Object.create(null) as Record<string, string>, { namespace: "n" });
    expect(subjectFromLabels(bare)).toMatchObject({ kind: "Namespace", name: "n" });
    expect(subjectFromLabels({ job: "kube-state-metrics" }).kind).toBe("");
  });
});

describe("describeSubject", () => {
  it.each([
    [{ kind: "Pod", name: "api", namespace: "shop" }, "shop/pod/api"],
    [{ kind: "Node", name: "worker-1" }, "node/worker-1"],
    [{ kind: "Namespace", name: "shop" }, "namespace/shop"],
    [{ kind: "", name: "" }, ""],
    [{ kind: "", name: "x", namespace: "y" }, ""],
  ])("%j → %s", (s, expected) => {
    expect(describeSubject(s)).toBe(expected);
  });
});

describe("computeFingerprint", () => {
  const pod = { kind: "Pod", name: "api", namespace: "shop" };

  it("is 16 hex characters and stable", () => {
    const f = computeFingerprint("prometheus", pod, "KubePodCrashLooping");
    expect(f).toMatch(/^[0-9a-f]{16}$/);
    expect(computeFingerprint("prometheus", { ...pod }, "KubePodCrashLooping")).toBe(f);
  });

  it("differs by source, kind, name, namespace and aggregation key", () => {
    const base = computeFingerprint("prometheus", pod, "A");
    const variants = [
      computeFingerprint("kubernetes", pod, "A"),
      computeFingerprint("prometheus", { ...pod, kind: "Deployment" }, "A"),
      computeFingerprint("prometheus", { ...pod, name: "api2" }, "A"),
      computeFingerprint("prometheus", { ...pod, namespace: "other" }, "A"),
      computeFingerprint("prometheus", { kind: "Pod", name: "api" }, "A"),
      computeFingerprint("prometheus", pod, "B"),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });

  it("cannot be forged by moving text across field boundaries", () => {
    const a = computeFingerprint("prometheus", { kind: "Pod", name: "a/b", namespace: "x" }, "K");
    const b = computeFingerprint("prometheus", { kind: "Pod", name: "b", namespace: "x/a" }, "K");
    expect(a).not.toBe(b);
    const c = computeFingerprint("prometheus", { kind: "Pod", name: "ab", namespace: "" }, "K");
    const d = computeFingerprint("prometheus", { kind: "Poda", name: "b", namespace: "" }, "K");
    expect(c).not.toBe(d);
  });

  it("treats an absent namespace like an empty one; distinct fields never collide (property)", () => {
    expect(computeFingerprint("s", { kind: "Node", name: "n" }, "k")).toBe(computeFingerprint("s", { kind: "Node", name: "n", namespace: "" }, "k"));
    const str = fc.string({ maxLength: 8, unit: fc.constantFrom("a", "b", "/", "\0") });
    fc.assert(
      fc.property(fc.tuple(str, str, str, str), fc.tuple(str, str, str, str), (x, y) => {
        fc.pre(x.some((v, i) => v !== y[i]));
        const fx = computeFingerprint("s", { kind: x[0], name: x[1], namespace: x[2] }, x[3]);
        const fy = computeFingerprint("s", { kind: y[0], name: y[1], namespace: y[2] }, y[3]);
        // The \0 separator is the only way to collide; fields without \0 never do.
        if (![...x, ...y].some((v) => v.includes("\0"))) expect(fx).not.toBe(fy);
      }),
      { numRuns: 300 },
    );
  });
});

describe("severity", () => {
  it("ranks HIGH first and DEBUG last", () => {
    expect(SEVERITIES.map(severityRank)).toEqual([0, 1, 2, 3]);
    expect(severityRank("HIGH")).toBeLessThan(severityRank("LOW"));
  });

  it("isSeverity accepts exactly the four names", () => {
    for (const s of SEVERITIES) expect(isSeverity(s)).toBe(true);
    for (const v of ["high", "CRITICAL", "", undefined, null, 1, {}]) expect(isSeverity(v)).toBe(false);
  });

  it("never maps to anything but a Severity (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.constantFrom("constructor", "__proto__", "hasOwnProperty", "valueOf", " toString ")), (label) => {
        expect(SEVERITIES).toContain(mapSeverity(label));
      }),
      { numRuns: 300 },
    );
  });

  it("matches overrides ignoring case and surrounding spaces, and they win over defaults", () => {
    expect(mapSeverity(" CRITICAL ", { critical: "LOW" })).toBe("LOW");
    expect(mapSeverity("sev1", { " SEV1 ": "HIGH" })).toBe("HIGH");
    expect(mapSeverity("sev2", { sev1: "HIGH" })).toBe("INFO");
    expect(mapSeverity("", {})).toBe("INFO");
  });
});

describe("createIssue", () => {
  const fields: NewIssue = {
    title: "t",
    aggregationKey: "A",
    severity: "LOW",
    status: "FIRING",
    source: "prometheus",
    type: "alert",
    subject: subjectFromLabels({ pod: "p", namespace: "n" }),
    startsAt: "2026-11-26T10:00:00.000Z",
    clusterName: "c",
  };

  it("fills id, receivedAt, links, enrichments and a computed fingerprint", () => {
    const now = new Date("2026-11-26T11:00:00Z");
    const i = createIssue(fields, now);
    expect(i.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(i.receivedAt).toBe(now.toISOString());
    expect(i.links).toEqual([]);
    expect(i.enrichments).toEqual([]);
    expect(i.fingerprint).toBe(computeFingerprint("prometheus", i.subject, "A"));
    expect(createIssue(fields).id).not.toBe(i.id);
  });

  it("omits empty optional fields instead of writing undefined", () => {
    const i = createIssue({ ...fields, description: "", endsAt: undefined, groupKey: undefined });
    expect(Object.keys(i)).not.toContain("description");
    expect(Object.keys(i)).not.toContain("endsAt");
    expect(Object.keys(i)).not.toContain("groupKey");
    expect(JSON.parse(JSON.stringify(i))).toEqual(i);
  });

  it("withEnrichment returns a new Issue and leaves the old one alone", () => {
    const i = createIssue(fields);
    const e = { title: "Logs", blocks: [{ type: "markdown" as const, text: "x" }] };
    const j = withEnrichment(i, e);
    expect(j).not.toBe(i);
    expect(i.enrichments).toEqual([]);
    expect(j.enrichments).toEqual([e]);
    expect(j.id).toBe(i.id);
  });
});

describe("timeOrderedId", () => {
  const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it("is a version 7 UUID whose first 48 bits are the time in ms", () => {
    const ms = Date.UTC(2026, 10, 26, 10, 0, 0, 123);
    const id = timeOrderedId(ms);
    expect(id).toMatch(UUID_V7);
    expect(parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(ms);
  });

  it("sorts by time as text, and ids of the same ms differ", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 47 }), fc.integer({ min: 1, max: 2 ** 40 }), (a, d) => {
        expect(timeOrderedId(a) < timeOrderedId(a + d)).toBe(true);
      }),
    );
    const same = new Set(Array.from({ length: 1000 }, () => timeOrderedId(1_000)));
    expect(same.size).toBe(1000);
  });
});

describe("isoTime", () => {
  it("is Date's toISOString, for every time Date can hold", () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), fc.double({ min: -1e13, max: 1e13, noNaN: true })), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 5000 },
    );
    for (const t of ["0000-01-01T00:00:00.000Z", "1600-02-29T23:59:59.999Z", "1900-03-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "2000-02-29T12:00:00.000Z", "9999-12-31T23:59:59.999Z"]) {
      expect(isoTime(Date.parse(t))).toBe(t);
    }
    expect(isoTime(Date.parse("+010000-01-01T00:00:00.000Z"))).toBe("+010000-01-01T00:00:00.000Z");
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
  });
});

describe("formatDuration", () => {
  const s = 1000;
  const m = 60 * s;
  const h = 60 * m;
  const d = 24 * h;
  it.each([
    [0, "0s"],
    [999, "0s"],
    [s, "1s"],
    [59 * s + 999, "59s"],
    [m, "1m"],
    [12 * m + 30 * s, "12m"],
    [59 * m + 59 * s, "59m"],
    [h, "1h"],
    [3 * h + 4 * m, "3h 4m"],
    [47 * h + 59 * m, "47h 59m"],
    [48 * h, "2d"],
    [2 * d + h, "2d 1h"],
    [2 * d + h + 59 * m, "2d 1h"],
    [400 * d, "400d"],
    [-1, "0s"],
    [Number.NaN, "0s"],
    [Number.POSITIVE_INFINITY, "0s"],
  ])("%d ms → %s", (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });

  it("always reads as one or two units (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 * d }), (ms) => {
        const out = formatDuration(ms);
        expect(out).toMatch(/^\d+[smhd]( \d+[mh])?$/);
        expect(out.length).toBeLessThanOrEqual(9);
      }),
    );
  });
});

describe("tailLines", () => {
  it.each([
    ["a\nb\nc", 2, "b\nc"],
    ["a\nb\nc\n", 2, "b\nc"],
    ["a\nb\nc", 3, "a\nb\nc"],
    ["a\nb\nc", 10, "a\nb\nc"],
    ["a\nb\nc", 1, "c"],
    ["a\nb\nc", 0, ""],
    ["a\nb\nc", -1, ""],
    ["", 3, ""],
    ["\n", 1, ""],
    ["a\n\n\nb", 2, "\nb"],
    ["\na", 2, "\na"],
    ["\n\na", 3, "\n\na"],
    ["single line", 1, "single line"],
  ])("%j, %i → %j", (text, n, expected) => {
    expect(tailLines(text, n)).toBe(expected);
  });

  it("returns the last n lines (property)", () => {
    // The last line is not empty: "a\n" is one line with its terminator, not two.
    const line = fc.string({ unit: fc.constantFrom("a", "b", " ") });
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), line.filter((l) => l !== ""), fc.nat(25), (head, last, n) => {
        const lines = [...head, last];
        const text = lines.join("\n");
        const expected = n === 0 ? "" : lines.slice(-n).join("\n");
        expect(tailLines(text, n)).toBe(expected);
        expect(tailLines(`${text}\n`, n)).toBe(expected);
      }),
    );
  });
});

describe("truncate", () => {
  it.each([
    ["hello", 10, "hello"],
    ["hello", 5, "hello"],
    ["hello world", 5, "hell…"],
    ["hello", 1, "…"],
    ["hello", 0, ""],
    ["a😀b", 3, "a…"],
    ["a😀b", 4, "a😀b"],
    ["ab😀", 3, "ab…"],
    ["😀😀😀", 4, "😀…"],
  ])("%j to %i → %j", (s, max, expected) => {
    expect(truncate(s, max)).toBe(expected);
  });

  it("takes a custom marker", () => {
    expect(truncate("hello world", 8, "...")).toBe("hello...");
    expect(truncate("hello world", 2, "...")).toBe("..");
  });

  it("never splits a surrogate pair and never exceeds max (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-composite", maxLength: 30 }), fc.nat(40), (s, max) => {
        const out = truncate(s, max);
        expect(out.length).toBeLessThanOrEqual(Math.max(max, 0));
        expect(wellFormed(out)).toBe(true);
        if (s.length <= max) expect(out).toBe(s);
        else if (max >= 1) {
          expect(out.endsWith("…")).toBe(true);
          expect(s.startsWith(out.slice(0, -1))).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("truncateStart", () => {
  it.each([
    ["hello", 10, "hello"],
    ["line1\nline2\nline3", 7, "…\nline3"],
    ["a😀b", 3, "…b"],
    ["😀😀", 3, "…😀"],
    ["hello", 1, "…"],
  ])("%j to %i → %j", (s, max, expected) => {
    expect(truncateStart(s, max)).toBe(expected);
  });

  it("keeps the end, never splits a surrogate pair (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-composite", maxLength: 30 }), fc.nat(40), (s, max) => {
        const out = truncateStart(s, max);
        expect(out.length).toBeLessThanOrEqual(max);
        expect(wellFormed(out)).toBe(true);
        if (s.length <= max) expect(out).toBe(s);
        else if (max >= 1) expect(s.endsWith(out.slice(1))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe("fit", () => {
  it("pads or cuts to the width", () => {
    expect(fit("ab", 4)).toBe("ab  ");
    expect(fit("abcdef", 4)).toBe("abc…");
    expect(fit("abcd", 4)).toBe("abcd");
  });
});

describe("stripControl", () => {
  it.each([
    ["plain text", "plain text"],
    ["keeps\nnewlines\tand tabs", "keeps\nnewlines\tand tabs"],
    ["\u001b[31mred\u001b[0m", "red"],
    ["\u001b[1;38;5;196mbold\u001b[m", "bold"],
    ["\u001b[2J\u001b[Hcleared", "cleared"],
    ["\u001b]0;evil title\u0007text", "text"],
    ["\u001b]8;;https://evil.example\u001b\\link\u001b]8;;\u001b\\", "link"],
    ["\u001bcreset", "reset"],
    ["\u001b7saved\u001b8", "saved"],
    ["\u001b(Bcharset", "charset"],
    ["\u001b", ""],
    ["a\u0000b\u0007c\u0008d\u000be\u000cf\rg", "abcdefg"],
    ["DEL\u007f", "DEL"],
    ["C1\u0085\u009b31mx\u009c", "C131mx"],
    ["bidi and emoji stay: \u202e😀 é", "bidi and emoji stay: \u202e😀 é"],
  ])("%j → %j", (input, expected) => {
    expect(stripControl(input)).toBe(expected);
  });

  it("leaves no C0/C1 control other than \\n and \\t (property)", () => {
    const ctl = fc.constantFrom("\u001b", "[", "]", "\u0007", "\\", "\n", "\t", "\r", "\u0000", "\u009b", "\u0085", "\u007f", "a", "1", ";", "m");
    fc.assert(
      fc.property(fc.string({ unit: fc.oneof(ctl, fc.string({ unit: "binary", maxLength: 1 })), maxLength: 40 }), (s) => {
        const out = stripControl(s);
        expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
        // Newlines and tabs are never added or removed outside an escape sequence.
        if (!/[\u001b\u009b]/.test(s)) {
          expect(out.split("\n").length).toBe(s.split("\n").length);
          expect(out.split("\t").length).toBe(s.split("\t").length);
        }
      }),
      { numRuns: 500 },
    );
  });
});
