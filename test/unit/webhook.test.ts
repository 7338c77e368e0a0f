/**
 * The webhook destination: params, golden requests per Alertmanager fixture
 * (and an Issue with every block type), every document valid against the
 * published JSON Schema (docs/webhook-schema.v1.json) and read back by
 * replay's parser, the signature recipes of docs/destinations/webhook.md run
 * as written, sends against the local receiver, and `kubecano
 * test-destination` through the built CLI.
 */
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Block } from "../../src/core/blocks.js";
import { ISSUE_DOCUMENT_VERSION, toIssueDocument } from "../../src/core/issue-document.js";
import { createIssue, type Issue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { validateConfig } from "../../src/config/load.js";
import { REDACTED, redactConfig } from "../../src/config/redact.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { DESTINATION_TYPES } from "../../src/destinations/registry.js";
import { DeliveryError, type Destination } from "../../src/destinations/types.js";
import { renderWebhook, signature } from "../../src/destinations/webhook/render.js";
import { createLogger } from "../../src/observability/logger.js";
import { alertmanagerToIssues, parseWebhookBody } from "../../src/sources/alertmanager/index.js";
import { parseIssueDocument } from "../../src/sources/issue-document.js";
import { parseReplayText } from "../../src/sources/alertmanager/replay-input.js";
import { VERSION } from "../../src/version.js";
import { startWebhookFake, type WebhookFake } from "../fakes/webhook.js";
import { assertBuilt, PACKAGE_VERSION, removeTempDir, runCli, tempDirWith } from "../helpers/cli.js";
import { validateJsonSchema } from "../helpers/json-schema.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(here, "../..");
const FIXTURES = path.join(here, "../fixtures/alertmanager");
const GOLDEN = path.join(here, "../golden/webhook");
const SCHEMA = JSON.parse(readFileSync(path.join(ROOT, "docs/webhook-schema.v1.json"), "utf8")) as Record<string, unknown>;
const DOC = readFileSync(path.join(ROOT, "docs/destinations/webhook.md"), "utf8");
const NOW = new Date("2026-11-26T10:40:00.000Z");
const SENT_AT = new Date("2026-11-26T10:40:01.500Z");
const FIXED_ID = "00000000-0000-4000-8000-000000000000";
const GOLDEN_SECRET = "golden-secret-0123456789";
const UPDATE = process.env["UPDATE_GOLDEN"] === "1";

function fixtureIssues(file: string): Issue[] {
  const fixture = JSON.parse(readFileSync(path.join(FIXTURES, file), "utf8")) as { body: unknown };
  const parsed = parseWebhookBody(JSON.stringify(fixture.body));
  if (!parsed.ok) throw new Error(`${file}: ${parsed.error.message}`);
  return alertmanagerToIssues(parsed.value, { clusterName: "prod-eu-1", now: NOW }).map((i) => ({ ...i, id: FIXED_ID }));
}

const EVERY_BLOCK: Block[] = [
  { type: "header", text: "Pod api-7d9f" },
  { type: "markdown", text: "*Crash looping* since `10:38`, <https://example.test|see>" },
  { type: "divider" },
  { type: "list", items: ["restarts: 14", "last exit: 137 (OOMKilled)"] },
  { type: "links", links: [{ name: "Dashboard", url: "https://grafana.example.test/d/pods", kind: "dashboard" }, { name: "Other", url: "https://example.test/x" }] },
  { type: "table", title: "Containers", headers: ["name", "state", "restarts"], rows: [["api", "Waiting (CrashLoopBackOff)", "14"], ["sidecar", "Running", "0"]] },
  { type: "table", headers: ["key"], rows: [] },
  { type: "file", filename: "api.log", title: "api logs", content: "line 1\nline 2 \u001b[31mred\u001b[0m\n\"quoted\" \\ backslash\n", excerptLines: 5 },
  { type: "file", filename: "empty.log", content: "" },
  { type: "json", title: "Resources", data: { limits: { memory: "256Mi" }, list: [1, 2.5, null, true], unicode: "zażółć 🚀" } },
  { type: "json", data: null },
];

function enrichedIssue(): Issue {
  const base = createIssue(
    {
      title: "Pod shop/api-7d9f is crash looping",
      description: "Pod shop/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
      aggregationKey: "KubePodCrashLooping",
      severity: "HIGH",
      status: "FIRING",
      source: "prometheus",
      type: "alert",
      subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "shop", pod: "api-7d9f", container: "api", node: "worker-1", severity: "critical" }, { summary: "crash" }),
      startsAt: "2026-11-26T10:38:06.184123456Z",
      links: [{ name: "Runbook", url: "https://runbooks.example.test/crashloop", kind: "runbook" }],
      groupKey: '{}:{alertname="KubePodCrashLooping"}',
      clusterName: "prod-eu-1",
      fingerprint: "0a732576aaf8ce3c",
      enrichments: [
        { title: "Every block", source: "test", blocks: EVERY_BLOCK },
        { title: "No source", blocks: [{ type: "markdown", text: "x" }] },
      ],
    },
    NOW,
  );
  return { ...base, id: FIXED_ID };
}

function expectValid(doc: unknown): void {
  expect(validateJsonSchema(SCHEMA, doc, { documented: true })).toEqual([]);
}

const fixtureFiles = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .sort();

const goldenCases: [string, () => Issue[]][] = [...fixtureFiles.map((f): [string, () => Issue[]] => [f, () => fixtureIssues(f)]), ["enriched-every-block.json", () => [enrichedIssue()]]];

describe("webhook params", () => {
  const parse = (p: unknown) => DESTINATION_TYPES.webhook.params.safeParse(p);

  it("defaults to POST with a 10 s timeout", () => {
    expect(DESTINATION_TYPES.webhook.params.parse({ url: "https://hooks.example.test/x" })).toEqual({ url: "https://hooks.example.test/x", method: "POST", timeout: 10_000 });
  });

  it.each([
    [{}, "url"],
    [{ url: "ftp://example.test/x" }, "url"],
    [{ url: "not a url" }, "url"],
    [{ url: "https://h.test", secret: "short" }, "secret"],
    [{ url: "https://h.test", headers: { "Content-Type": "text/plain" } }, "headers"],
    [{ url: "https://h.test", headers: { "x-kubecano-signature": "forged" } }, "headers"],
    [{ url: "https://h.test", headers: { "bad name": "v" } }, "headers"],
    [{ url: "https://h.test", headers: { "X-Ok": "a\r\nInjected: yes" } }, "headers"],
    [{ url: "https://u:p@h.test", headers: { Authorization: "Bearer x" } }, "headers"],
    [{ url: "https://h.test", method: "GET" }, "method"],
    [{ url: "https://h.test", timeout: "soon" }, "timeout"],
    [{ url: "https://h.test", extra: 1 }, ""],
  ])("refuses %j (at %s)", (p, key) => {
    const r = parse(p);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues.map((i) => String(i.path[0] ?? ""))).toContain(key);
  });

  it("never echoes the URL or a header value in its errors", () => {
    const r = parse({ url: "https://user:pw-9f8e7d6c@h.test/sekret-path", headers: { Authorization: "Bearer tok-5a4b3c2d1e", "X-Bad": "v\n" } });
    expect(r.success).toBe(false);
    const text = JSON.stringify(r.error?.issues);
    for (const s of ["pw-9f8e7d6c", "sekret-path", "tok-5a4b3c2d1e"]) expect(text).not.toContain(s);
  });

  it("lists url, secret and headers as secrets: credential-like header values are scrubbed everywhere, all are redacted", async () => {
    expect(DESTINATION_TYPES.webhook.secretParams).toEqual(["url", "secret", "headers"]);
    const headers = { Authorization: "Bearer abc123", "X-Api-Key": "k-9876", "X-Team": "payments", "X-Opaque": "0123456789abcdef0" };
    const loaded = await validateConfig({ destinations: [{ name: "hook", type: "webhook", params: { url: "https://h.test/p/tok-1a2b", secret: "s".repeat(16), headers } }] }, undefined, {});
    expect([...loaded.secrets].sort()).toEqual(["0123456789abcdef0", "Bearer abc123", "https://h.test/p/tok-1a2b", "k-9876", "s".repeat(16)].sort());
    const printed = redactConfig(loaded.config).destinations[0]!.params as { url: string; secret: string; headers: Record<string, string> };
    expect(printed).toMatchObject({ url: REDACTED, secret: REDACTED, headers: { Authorization: REDACTED, "X-Api-Key": REDACTED, "X-Team": REDACTED, "X-Opaque": REDACTED } });
  });
});

describe("webhook golden requests", () => {
  it("has Alertmanager fixtures", () => expect(fixtureFiles.length).toBeGreaterThan(0));

  it.each(goldenCases)("%s", (name, issues) => {
    const rendered = issues().map((i) => {
      const r = renderWebhook(i, { destination: "hook", sentAt: SENT_AT, version: "0.0.0-golden", secret: GOLDEN_SECRET, headers: { Authorization: "Bearer golden" } });
      expect(r.body).toBe(JSON.stringify(r.document));
      return { headers: r.headers, body: r.document };
    });
    for (const r of rendered) expectValid(r.body);
    const goldenPath = path.join(GOLDEN, name);
    const actual = `${JSON.stringify(rendered, null, 2)}\n`;
    if (UPDATE) {
      mkdirSync(GOLDEN, { recursive: true });
      writeFileSync(goldenPath, actual);
      return;
    }
    if (!existsSync(goldenPath)) throw new Error(`no golden file ${path.relative(process.cwd(), goldenPath)}: run UPDATE_GOLDEN=1 npx vitest run test/unit/webhook.test.ts`);
    expect(actual).toBe(readFileSync(goldenPath, "utf8"));
  });

  it("signs timestamp.body: the golden signature is HMAC-SHA256 over exactly those bytes", () => {
    const r = renderWebhook(enrichedIssue(), { destination: "hook", sentAt: SENT_AT, version: "x", secret: GOLDEN_SECRET });
    expect(r.headers["x-kubecano-timestamp"]).toBe(String(Math.floor(SENT_AT.getTime() / 1000)));
    expect(r.headers["x-kubecano-signature"]).toBe(signature(GOLDEN_SECRET, r.headers["x-kubecano-timestamp"]!, r.body));
    expect(r.headers["x-kubecano-signature"]).not.toBe(signature(GOLDEN_SECRET, r.headers["x-kubecano-timestamp"]!, `${r.body} `));
    expect(renderWebhook(enrichedIssue(), { destination: "hook", sentAt: SENT_AT, version: "x" }).headers).not.toHaveProperty("x-kubecano-signature");
  });

  it("is pure: the same Issue and time give the same bytes", () => {
    const a = enrichedIssue();
    const opts = { destination: "hook", sentAt: SENT_AT, version: "x", secret: GOLDEN_SECRET };
    expect(renderWebhook(a, opts)).toEqual(renderWebhook(structuredClone(a), opts));
  });
});

describe("kubecano.issue/v1 documents", () => {
  it("the validator catches what the schema forbids (so the checks above can fail)", () => {
    const doc = JSON.parse(JSON.stringify(toIssueDocument(enrichedIssue(), SENT_AT))) as { issue: Record<string, unknown>; [k: string]: unknown };
    expect(validateJsonSchema(SCHEMA, { ...doc, version: "kubecano.issue/v2" })).not.toEqual([]);
    expect(validateJsonSchema(SCHEMA, { ...doc, issue: { ...doc.issue, severity: "CRITICAL" } })).not.toEqual([]);
    const { endsAt: _drop, ...noEndsAt } = doc.issue;
    expect(validateJsonSchema(SCHEMA, { ...doc, issue: noEndsAt })).not.toEqual([]);
    expect(validateJsonSchema(SCHEMA, { ...doc, issue: { ...doc.issue, enrichments: [{ title: "x", source: null, blocks: [{ type: "video" }] }] } })).not.toEqual([]);
    expect(validateJsonSchema(SCHEMA, { ...doc, extra: 1 }, { documented: true })).toEqual(["/extra: key extra is not documented in the schema"]);
    expect(validateJsonSchema(SCHEMA, { ...doc, extra: 1 })).toEqual([]);
  });

  it("every document, whatever the Issue, validates and reads back as the same Issue", () => {
    const str = fc.string({ maxLength: 20, unit: "grapheme-composite" });
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const link = fc.record({ name: str, url: str, kind: opt(fc.constantFrom("graph" as const, "runbook" as const, "silence" as const, "dashboard" as const, "other" as const)) }, { requiredKeys: ["name", "url"] });
    const block: fc.Arbitrary<Block> = fc.oneof(
      fc.record({ type: fc.constant("markdown" as const), text: str }),
      fc.record({ type: fc.constant("header" as const), text: str }),
      fc.record({ type: fc.constant("divider" as const) }),
      fc.record({ type: fc.constant("list" as const), items: fc.array(str, { maxLength: 3 }) }),
      fc.record({ type: fc.constant("links" as const), links: fc.array(link, { maxLength: 3 }) }),
      fc.record({ type: fc.constant("table" as const), title: opt(str), headers: fc.array(str, { maxLength: 3 }), rows: fc.array(fc.array(str, { maxLength: 3 }), { maxLength: 3 }) }, { requiredKeys: ["type", "headers", "rows"] }),
      fc.record({ type: fc.constant("file" as const), filename: str, title: opt(str), content: fc.string({ maxLength: 200 }), excerptLines: opt(fc.nat(50)) }, { requiredKeys: ["type", "filename", "content"] }),
      fc.record({ type: fc.constant("json" as const), title: opt(str), data: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: ["type", "data"] }),
    );
    const labels = fc.dictionary(fc.stringMatching(/^[a-z_]{1,8}$/), str, { maxKeys: 4 });
    fc.assert(
      fc.property(
        fc.record({
          title: str,
          description: opt(str),
          severity: fc.constantFrom("HIGH" as const, "LOW" as const, "INFO" as const, "DEBUG" as const),
          status: fc.constantFrom("FIRING" as const, "RESOLVED" as const),
          source: fc.constantFrom("prometheus" as const, "kubernetes" as const, "helm" as const, "manual" as const),
          type: fc.constantFrom("alert" as const, "event" as const),
          labels,
          annotations: labels,
          groupKey: opt(str),
          links: fc.array(link, { maxLength: 3 }),
          enrichments: fc.array(fc.record({ title: str, source: opt(str), blocks: fc.array(block, { maxLength: 4 }) }, { requiredKeys: ["title", "blocks"] }), { maxLength: 3 }),
        }),
        (r) => {
          const issue = createIssue(
            {
              title: r.title,
              description: r.description,
              aggregationKey: "Prop",
              severity: r.severity,
              status: r.status,
              source: r.source,
              type: r.type,
              subject: subjectFromLabels({ ...r.labels, alertname: "Prop" }, r.annotations),
              startsAt: "2026-01-01T00:00:00Z",
              ...(r.status === "RESOLVED" ? { endsAt: "2026-01-01T01:00:00Z" } : {}),
              groupKey: r.groupKey,
              links: r.links,
              clusterName: "c",
              enrichments: r.enrichments,
            },
            NOW,
          );
          // Over the wire and back: what a receiver (or replay) parses.
          const wire = JSON.parse(renderWebhook(issue, { destination: "d", sentAt: SENT_AT, version: "x" }).body) as unknown;
          expect(validateJsonSchema(SCHEMA, wire, { documented: true })).toEqual([]);
          const back = parseIssueDocument(wire);
          expect(back.ok).toBe(true);
          if (back.ok) expect(back.value).toEqual(JSON.parse(JSON.stringify(issue)));
        },
      ),
      { numRuns: 150 },
    );
  });

  it("replay's input reader takes documents, arrays of them and NDJSON, next to Alertmanager bodies", () => {
    const firing = enrichedIssue();
    const resolved = { ...firing, id: "resolved-id", status: "RESOLVED" as const, endsAt: "2026-11-26T11:00:00Z" };
    const lines = [JSON.stringify(toIssueDocument(firing, SENT_AT)), JSON.stringify(toIssueDocument(resolved, SENT_AT)), JSON.stringify({ labels: { alertname: "Hand" } })].join("\n");
    const r = parseReplayText(lines, "issues.ndjson", NOW);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.map((i) => i.where)).toEqual(["issues.ndjson:1", "issues.ndjson:2", "issues.ndjson:3"]);
    expect(r.value[0]!.issue).toEqual(firing);
    expect(r.value[1]!.issue?.status).toBe("RESOLVED");
    expect(r.value[2]!.payload?.alerts[0]!.labels["alertname"]).toBe("Hand");
    const arr = parseReplayText(JSON.stringify([toIssueDocument(firing, SENT_AT)]), "a.json", NOW);
    expect(arr.ok && arr.value[0]!.issue?.fingerprint).toBe(firing.fingerprint);
    // A captured webhook request ({headers, body}) works as well.
    const captured = parseReplayText(JSON.stringify({ headers: { "content-type": "application/json" }, body: JSON.stringify(toIssueDocument(firing, SENT_AT)) }), "req.json", NOW);
    expect(captured.ok && captured.value[0]!.issue?.id).toBe(FIXED_ID);
  });

  it.each([
    [{ version: "kubecano.issue/v2", event: "issue.firing", issue: {} }, /version "kubecano.issue\/v2" is not supported: this kubecano reads kubecano.issue\/v1/],
    [{ ...toIssueDocument(enrichedIssue(), SENT_AT), event: "issue.resolved" }, /event issue.resolved does not agree with issue.status FIRING/],
    [{ ...toIssueDocument(enrichedIssue(), SENT_AT), issue: { ...toIssueDocument(enrichedIssue(), SENT_AT).issue, severity: "CRITICAL" } }, /issue.severity/],
  ])("replay refuses a bad document with one line naming it: %#", (doc, re) => {
    const r = parseReplayText(`${JSON.stringify(doc)}\n`, "bad.ndjson", NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.message).toMatch(/^bad.ndjson: /);
      expect(r.error.message).toMatch(re);
      expect(r.error.message).not.toContain("\n");
    }
  });
});

describe("the signature recipes in docs/destinations/webhook.md, run as written", () => {
  const SECRET = "doc-secret-abcdef0123456789";
  const fence = (lang: string, marker: string): string => {
    const re = new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g");
    for (const m of DOC.matchAll(re)) if (m[1]!.includes(marker)) return m[1]!;
    throw new Error(`docs/destinations/webhook.md has no \`\`\`${lang} block with ${marker}`);
  };
  let dir: string;
  let body: string;
  let headers: Record<string, string>;
  beforeAll(async () => {
    const r = renderWebhook(enrichedIssue(), { destination: "hook", sentAt: new Date(), version: VERSION, secret: SECRET });
    body = r.body;
    headers = { ...r.headers };
    dir = await tempDirWith({ "verify.mjs": fence("js", "verifyKubecano"), "verify.sh": fence("sh", "openssl dgst"), "body.json": body });
  });
  afterAll(() => removeTempDir(dir));

  it("Node: accepts kubecano's request, refuses a changed body, another secret and an old timestamp", async () => {
    const { verifyKubecano } = (await import(pathToFileURL(path.join(dir, "verify.mjs")).href)) as { verifyKubecano: (s: string, h: Record<string, string>, b: Buffer, tol?: number) => boolean };
    expect(verifyKubecano(SECRET, headers, Buffer.from(body))).toBe(true);
    expect(verifyKubecano(SECRET, headers, Buffer.from(body.replace("HIGH", "LOW")))).toBe(false);
    expect(verifyKubecano(`${SECRET}x`, headers, Buffer.from(body))).toBe(false);
    const old = renderWebhook(enrichedIssue(), { destination: "hook", sentAt: new Date(Date.now() - 3_600_000), version: VERSION, secret: SECRET });
    expect(verifyKubecano(SECRET, { ...old.headers }, Buffer.from(old.body))).toBe(false);
  });

  it("shell: openssl computes the same signature, and a changed body does not match", async () => {
    const run = (env: Record<string, string>) =>
      promisify(execFile)("sh", ["verify.sh"], { cwd: dir, env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env } }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? "" }),
      );
    const env = { TS: headers["x-kubecano-timestamp"]!, SIG: headers["x-kubecano-signature"]!, SECRET };
    expect(await run(env)).toEqual({ code: 0, out: "signature ok\n" });
    await writeFile(path.join(dir, "body.json"), `${body} `);
    expect((await run(env)).code).toBe(1);
    await writeFile(path.join(dir, "body.json"), body);
  });
});

describe("webhook destination against a local receiver", () => {
  let fake: WebhookFake;
  const logLines: string[] = [];
  const log = createLogger({ stream: new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString()), cb()) }), format: "json", level: "trace" });
  const destinations: Destination[] = [];
  afterEach(async () => {
    await fake?.close();
    logLines.length = 0;
  });
  afterAll(() => closeHttpAgent());

  async function dest(params: Record<string, unknown>, name = "hook"): Promise<Destination> {
    const mod = await DESTINATION_TYPES.webhook.load();
    const d = await mod.create(name, DESTINATION_TYPES.webhook.params.parse(params), { log });
    destinations.push(d);
    return d;
  }
  const ctx = () => ({ signal: AbortSignal.timeout(10_000), attempt: 1, log });
  async function failure(d: Destination, issue: Issue): Promise<DeliveryError> {
    const e = await d.send(issue, ctx()).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(DeliveryError);
    return e as DeliveryError;
  }

  it("POSTs the exact document with kubecano's headers and a signature the receiver verifies", async () => {
    const secret = "receiver-secret-0123456789";
    fake = await startWebhookFake({ secret });
    const d = await dest({ url: fake.url, secret, headers: { "X-Team": "payments" } });
    const issue = enrichedIssue();
    const r = await d.send(issue, ctx());
    expect(r.detail).toBe(`issue.firing accepted by ${fake.origin} (HTTP 200)`);
    const call = fake.calls[0]!;
    expect(call.method).toBe("POST");
    expect(call.signatureOk).toBe(true);
    expect(call.headers["content-type"]).toBe("application/json");
    expect(call.headers["user-agent"]).toBe(`kubecano/${PACKAGE_VERSION}`);
    expect(call.headers["x-kubecano-delivery"]).toBe(`${FIXED_ID}/hook`);
    expect(call.headers["x-kubecano-event"]).toBe("issue.firing");
    expect(call.headers["x-team"]).toBe("payments");
    const doc = call.json as { version: string; event: string; sentAt: string; issue: unknown };
    expect(doc.version).toBe(ISSUE_DOCUMENT_VERSION);
    expect(doc.issue).toEqual(toIssueDocument(issue, new Date(doc.sentAt)).issue);
    expectValid(doc);
  });

  it("sends a resolution as issue.resolved with the same fingerprint, and retries with the same delivery id", async () => {
    fake = await startWebhookFake();
    const d = await dest({ url: fake.url });
    const firing = enrichedIssue();
    const resolved = { ...firing, id: "11111111-1111-4111-8111-111111111111", status: "RESOLVED" as const, endsAt: "2026-11-26T11:00:00Z" };
    fake.failNext(503);
    await failure(d, firing);
    await d.send(firing, ctx());
    await d.send(resolved, ctx());
    expect(fake.calls.map((c) => c.headers["x-kubecano-delivery"])).toEqual([`${FIXED_ID}/hook`, `${FIXED_ID}/hook`, `${resolved.id}/hook`]);
    expect(fake.received(firing.fingerprint)).toEqual(["open", "resolve"]);
    expect((fake.documents()[1] as { issue: { endsAt: string } }).issue.endsAt).toBe("2026-11-26T11:00:00Z");
    expect(fake.calls[0]!.headers).not.toHaveProperty("x-kubecano-signature");
  });

  it("PUTs when asked to", async () => {
    fake = await startWebhookFake();
    await (await dest({ url: fake.url, method: "PUT" })).send(enrichedIssue(), ctx());
    expect(fake.calls[0]!.method).toBe("PUT");
  });

  it("sends user:password from the URL as Basic auth, not in the URL, and never shows them", async () => {
    fake = await startWebhookFake({ authorization: `Basic ${Buffer.from("kube:pa ss/wörd").toString("base64")}`, echoOnError: true });
    const url = fake.url.replace("http://", "http://kube:pa%20ss%2Fw%C3%B6rd@");
    await (await dest({ url })).send(enrichedIssue(), ctx());
    expect(fake.calls[0]!.url).toBe("/hook");
    expect(fake.calls[0]!.status).toBe(200);
    const bad = await failure(await dest({ url: url.replace("kube:", "other:") }), enrichedIssue());
    expect(bad.code).toBe("http_401");
    expect(bad.hint).toMatch(/credentials/);
    expect(`${bad.message} ${bad.hint}`).not.toMatch(/pa%20ss|pa ss|wörd|w%C3%B6rd|a3ViZTpw|b3RoZXI6/);
  });

  it("scrubs the URL's secrets, the signing key and header values from a receiver's echo", async () => {
    fake = await startWebhookFake({ path: "/in/tok-2c4e6a8b0d?key=qk-13579bdf", echoOnError: true });
    const d = await dest({ url: fake.url, secret: "signing-key-0123456789ab", headers: { Authorization: "Bearer hdr-2468ace0" } });
    fake.failNext(500, { body: `failed for ${fake.url} with Bearer hdr-2468ace0 and signing-key-0123456789ab (key=qk-13579bdf)` });
    const err = await failure(d, enrichedIssue());
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^webhook http:\/\/127\.0\.0\.1:\d+ answered HTTP 500: failed for \[REDACTED\]/);
    for (const s of ["tok-2c4e6a8b0d", "qk-13579bdf", "hdr-2468ace0", "signing-key-0123456789ab"]) expect(err.message).not.toContain(s);
    expect(logLines.join("")).not.toMatch(/tok-2c4e|qk-1357|hdr-2468|signing-key/);
  });

  it.each([
    [301, /redirects/],
    [405, /params\.method/],
    [410, /gone/],
    [413, /body size limit/],
    [418, /refused the request/],
  ])("HTTP %i is not retried, with a hint", async (status, hint) => {
    fake = await startWebhookFake();
    fake.failNext(status);
    const err = await failure(await dest({ url: fake.url }), enrichedIssue());
    expect(err.retryable).toBe(false);
    expect(err.code).toBe(`http_${status}`);
    expect(err.hint).toMatch(hint);
  });

  it("408 is retried; an error answer without a body is just its status", async () => {
    fake = await startWebhookFake();
    fake.failNext(408);
    expect((await failure(await dest({ url: fake.url }), enrichedIssue())).retryable).toBe(true);
    fake.failNext(503, { body: "" });
    const err = await failure(await dest({ url: fake.url }), enrichedIssue());
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.message).toMatch(/answered HTTP 503$/);
  });

  it("a cut connection and a refused one are retryable", async () => {
    fake = await startWebhookFake();
    fake.closeNext();
    const cut = await failure(await dest({ url: fake.url }), enrichedIssue());
    expect(cut.retryable).toBe(true);
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const refused = await failure(await dest({ url: `http://127.0.0.1:${port}/hook/secret-path-123` }), enrichedIssue());
    expect(refused.retryable).toBe(true);
    expect(refused.code).toBe("econnrefused");
    expect(refused.message).not.toContain("secret-path-123");
  });

  it("render() is the document send() would post", async () => {
    fake = await startWebhookFake();
    const d = await dest({ url: fake.url });
    const r = d.render(enrichedIssue());
    expect(r.kind).toBe("json");
    expectValid(r.body);
    expect(fake.calls).toHaveLength(0);
  });
});

describe("kubecano test-destination with a webhook (built CLI)", { timeout: 120_000 }, () => {
  let fake: WebhookFake;
  afterEach(() => fake?.close());

  it("sends a test issue.firing and resolves it, with header values from the environment, and config print hides them", async () => {
    assertBuilt();
    fake = await startWebhookFake({ secret: "cli-secret-0123456789abcdef", authorization: "Bearer env-token-97531" });
    const cwd = await tempDirWith({
      "kubecano.config.yaml": ["destinations:", "  - name: hook", "    type: webhook", "    params:", `      url: ${fake.url}`, "      secret: ${HOOK_SECRET}", "      headers:", "        Authorization: Bearer ${HOOK_TOKEN}", ""].join("\n"),
    });
    try {
      const env = { HOOK_SECRET: "cli-secret-0123456789abcdef", HOOK_TOKEN: "env-token-97531" };
      const r = await runCli(["test-destination", "hook"], { cwd, env });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/✔ hook\s+issue\.firing accepted by http:\/\/127\.0\.0\.1:\d+ \(HTTP 200\); resolved \(issue\.resolved accepted/);
      expect(fake.calls.map((c) => [c.status, c.signatureOk, (c.json as { event: string }).event])).toEqual([
        [200, true, "issue.firing"],
        [200, true, "issue.resolved"],
      ]);
      const fp = (fake.documents()[0] as { issue: { fingerprint: string } }).issue.fingerprint;
      expect(fake.received(fp)).toEqual(["open", "resolve"]);

      const printed = await runCli(["config", "print"], { cwd, env });
      expect(printed.code).toBe(0);
      expect(printed.stdout).toContain('Authorization: "[REDACTED]"');
      for (const s of ["env-token-97531", "cli-secret-0123456789abcdef", fake.url]) expect(printed.stdout).not.toContain(s);

      // A wrong token: exit 1, the hint, and no secret anywhere.
      const bad = await runCli(["test-destination", "hook"], { cwd, env: { ...env, HOOK_TOKEN: "wrong-token-86420" } });
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/✖ hook\s+webhook http:\/\/127\.0\.0\.1:\d+ answered HTTP 401/);
      expect(bad.stdout).toMatch(/hint: the receiver refused kubecano's credentials/);
      for (const s of ["wrong-token-86420", "cli-secret-0123456789abcdef", "/hook"]) expect(`${bad.stdout}${bad.stderr}`).not.toContain(s);
    } finally {
      await removeTempDir(cwd);
    }
  });
});
