/**
 * The shared sender contract (in the spirit of Alertmanager's notify tests):
 * every file in test/contract/ except types.ts is a destination's case, found
 * with readdir and imported here, so a new destination is covered by adding
 * its case file, without editing this one. Each case runs the same table
 * against the destination's local fake, over real sockets:
 *
 * - HTTP destinations: 500/502/503/504 retryable; a request that never gets
 *   an answer (with a short `timeout` param) retryable and maybe delivered;
 *   429 retryable with its Retry-After; 400/401/403/404/422 not retryable,
 *   with a hint or a message naming the status;
 * - all: a FIRING then RESOLVED Issue reaches the fake as open then resolve
 *   (incident trackers) or as two messages; a repeat FIRING does not open a
 *   second incident; no secret of the case in any error message, hint, code,
 *   detail or log line (the destination's logger captured at trace level);
 * - all: through the DeliveryEngine on the durable store (SQLite in memory),
 *   two 503s then success deliver exactly once.
 *
 * Runner extension: a fake may carry `deps` (e.g. a stdout stream for the
 * console destination); they are handed to the destination's `create`.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { deliverySchema } from "../../src/config/schema.js";
import { createIssue, type Issue } from "../../src/core/issue.js";
import { subjectFromLabels } from "../../src/core/subject.js";
import { DeliveryEngine, type DeliveryEvent } from "../../src/delivery/engine.js";
import { SqliteDeliveryStore } from "../../src/delivery/sqlite-store.js";
import { closeHttpAgent } from "../../src/destinations/http.js";
import { DESTINATION_TYPES, DESTINATION_TYPE_NAMES, type DestinationTypeName } from "../../src/destinations/registry.js";
import { DeliveryError, type Destination, type DestinationDeps, type DestinationState, type SendResult } from "../../src/destinations/types.js";
import { createLogger, type Logger } from "../../src/observability/logger.js";
import type { ContractFake, DestinationContractCase } from "../contract/types.js";

const CONTRACT_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "../contract");
const files = readdirSync(CONTRACT_DIR)
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && f !== "types.ts")
  .sort();
const modules = await Promise.all(
  files.map(async (file) => ({ file, mod: (await import(pathToFileURL(path.join(CONTRACT_DIR, file)).href)) as { contractCase?: DestinationContractCase } })),
);

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => closeHttpAgent());

let seq = 0;
function issuePair(): { firing: Issue; resolved: Issue; fingerprint: string } {
  const fingerprint = `c0ffee${(++seq).toString(16).padStart(4, "0")}${Math.floor(Math.random() * 0xffffff).toString(16)}`;
  const base = {
    title: `Contract check ${seq}: pod payments/api-7d9f is crash looping`,
    description: "Pod payments/api-7d9f (api) is in waiting state (reason: CrashLoopBackOff).",
    aggregationKey: "KubePodCrashLooping",
    severity: "HIGH" as const,
    source: "prometheus" as const,
    type: "alert" as const,
    subject: subjectFromLabels({ alertname: "KubePodCrashLooping", namespace: "payments", pod: "api-7d9f", container: "api", severity: "critical" }),
    startsAt: "2026-03-01T10:00:00.000Z",
    clusterName: "contract",
    fingerprint,
    links: [{ name: "Runbook", url: "https://runbooks.example.test/crashloop", kind: "runbook" as const }],
    enrichments: [{ title: "Logs", blocks: [{ type: "markdown" as const, text: "*last lines*" }, { type: "file" as const, filename: "api.log", content: "boom\n" }] }],
  };
  return {
    fingerprint,
    firing: createIssue({ ...base, status: "FIRING" }),
    resolved: createIssue({ ...base, status: "RESOLVED", endsAt: "2026-03-01T10:12:00.000Z" }),
  };
}

function memoryState(): DestinationState {
  const m = new Map<string, string>();
  return {
    getState: (ns, key) => m.get(`${ns}\u0000${key}`),
    setState: (ns, key, value) => void (value === undefined ? m.delete(`${ns}\u0000${key}`) : m.set(`${ns}\u0000${key}`, value)),
  };
}

interface Harness {
  readonly fake: ContractFake;
  readonly log: Logger;
  /** Everything that must stay free of secrets: log lines, error texts, details. */
  readonly texts: string[];
  create(extraParams?: Record<string, unknown>, state?: DestinationState): Promise<Destination>;
  send(d: Destination, issue: Issue): Promise<SendResult>;
  fail(d: Destination, issue: Issue): Promise<DeliveryError>;
  expectNoSecrets(): void;
}

async function harness(c: DestinationContractCase): Promise<Harness> {
  const fake = await c.start();
  cleanups.push(() => fake.close());
  const texts: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      texts.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ stream, format: "json", level: "trace" });
  const extraDeps = (fake as { deps?: Partial<DestinationDeps> }).deps ?? {};
  const h: Harness = {
    fake,
    log,
    texts,
    async create(extraParams = {}, state = memoryState()) {
      const type = DESTINATION_TYPES[c.type as DestinationTypeName];
      const params = type.params.parse({ ...fake.params, ...extraParams });
      const mod = await type.load();
      const d = await (mod.create as (n: string, p: unknown, deps: DestinationDeps) => Destination | Promise<Destination>)(`contract-${c.type}`, params, { log, state, ...extraDeps });
      cleanups.push(() => d.close?.());
      return d;
    },
    async send(d, issue) {
      const r = await d.send(issue, { signal: AbortSignal.timeout(15_000), attempt: 1, log: log.child({ destination: d.name }) });
      texts.push(r.detail ?? "", r.remoteId ?? "");
      return r;
    },
    async fail(d, issue) {
      let result: SendResult | undefined;
      try {
        result = await d.send(issue, { signal: AbortSignal.timeout(15_000), attempt: 1, log: log.child({ destination: d.name }) });
      } catch (e) {
        expect(e, `${c.type} must fail with a DeliveryError`).toBeInstanceOf(DeliveryError);
        const err = e as DeliveryError;
        texts.push(err.message, err.hint ?? "", err.code);
        return err;
      }
      throw new Error(`expected the send to fail, it succeeded: ${result.detail ?? ""}`);
    },
    expectNoSecrets() {
      const all = texts.join("\n");
      for (const s of fake.secrets) expect(all.includes(s), `a secret of ${c.type} (${s.slice(0, 4)}…) appears in an error, detail or log line:\n${all}`).toBe(false);
    },
  };
  return h;
}

describe("the contract cases", () => {
  it("are found in test/contract, each exporting contractCase of a registered destination type", () => {
    expect(modules.length).toBeGreaterThan(0);
    for (const { file, mod } of modules) {
      expect(mod.contractCase, `${file} exports no contractCase`).toBeDefined();
      expect(DESTINATION_TYPE_NAMES, `${file}: type ${mod.contractCase?.type}`).toContain(mod.contractCase?.type);
    }
  });

  it("cover every registered destination type (a new destination adds test/contract/<type>.ts)", () => {
    const covered = new Set(modules.map((m) => m.mod.contractCase?.type));
    expect(DESTINATION_TYPE_NAMES.filter((t) => !covered.has(t))).toEqual([]);
  });
});

for (const { file, mod } of modules) {
  const c = mod.contractCase;
  if (c === undefined) continue;
  describe(`contract: ${c.type} (${file})`, () => {
    describe.runIf(c.http)("HTTP failures", () => {
      for (const status of [500, 502, 503, 504]) {
        it(`HTTP ${status} is retryable, and the next send goes through`, async () => {
          const h = await harness(c);
          const d = await h.create();
          const { firing, fingerprint } = issuePair();
          h.fake.failNext(status);
          const err = await h.fail(d, firing);
          expect(err.retryable).toBe(true);
          expect(h.fake.accepted()).toBe(0);
          await h.send(d, firing);
          expect(h.fake.accepted()).toBe(1);
          expect(h.fake.received(fingerprint)).toEqual(["open"]);
          h.expectNoSecrets();
        });
      }

      it("no answer within the timeout is retryable and maybe delivered", async () => {
        const h = await harness(c);
        const d = await h.create({ timeout: "300ms" });
        h.fake.hangNext();
        const err = await h.fail(d, issuePair().firing);
        expect(err.retryable).toBe(true);
        expect(err.maybeDelivered).toBe(true);
        h.expectNoSecrets();
      });

      it("429 is retryable and carries its Retry-After", async () => {
        const h = await harness(c);
        const d = await h.create();
        h.fake.failNext(429, { retryAfterSeconds: 7 });
        const err = await h.fail(d, issuePair().firing);
        expect(err.retryable).toBe(true);
        expect(err.retryAfterMs).toBe(7_000);
        h.expectNoSecrets();
      });

      for (const status of [400, 401, 403, 404, 422]) {
        it(`HTTP ${status} is not retryable, with a hint or a message naming it`, async () => {
          const h = await harness(c);
          const d = await h.create();
          h.fake.failNext(status);
          const err = await h.fail(d, issuePair().firing);
          expect(err.retryable).toBe(false);
          expect(err.message.trim()).not.toBe("");
          expect(err.hint !== undefined || err.message.includes(String(status)) || err.code.includes(String(status)), `${err.code}: ${err.message}`).toBe(true);
          expect(h.fake.accepted()).toBe(0);
          h.expectNoSecrets();
        });
      }
    });

    it(c.resolves ? "a FIRING then RESOLVED Issue opens, then resolves" : "a FIRING then RESOLVED Issue arrives as two messages", async () => {
      const h = await harness(c);
      const d = await h.create();
      const { firing, resolved, fingerprint } = issuePair();
      await h.send(d, firing);
      await h.send(d, resolved);
      if (c.resolves) expect(h.fake.received(fingerprint)).toEqual(["open", "resolve"]);
      else {
        expect(h.fake.received(fingerprint)).toHaveLength(2);
        expect(h.fake.received(fingerprint)[0]).toBe("open");
      }
      expect(h.fake.accepted()).toBe(2);
      h.expectNoSecrets();
    });

    it.runIf(c.resolves)("a repeat FIRING does not open a second incident", async () => {
      const h = await harness(c);
      const d = await h.create();
      const { firing, resolved, fingerprint } = issuePair();
      await h.send(d, firing);
      await h.send(d, { ...firing, id: `${firing.id}-repeat` });
      await h.send(d, resolved);
      const got = h.fake.received(fingerprint);
      expect(got.filter((x) => x === "open")).toHaveLength(1);
      expect(got[0]).toBe("open");
      expect(got.at(-1)).toBe("resolve");
      h.expectNoSecrets();
    });

    it(`through the delivery engine on the durable store: ${c.http ? "two 503s, then " : ""}delivered exactly once`, async () => {
      const h = await harness(c);
      const store = SqliteDeliveryStore.open({ stateDir: ":memory:", maxBacklog: 1_000, log: h.log });
      cleanups.push(() => store.close());
      const d = await h.create({}, store);
      const engine = new DeliveryEngine({
        store,
        destinations: [d],
        config: deliverySchema.parse({ concurrency: 2, attemptTimeout: "10s", retry: { initialDelay: "10ms", maxDelay: "50ms", maxAge: "1h" } }),
        log: h.log,
      });
      cleanups.push(() => engine.stop());
      const events: DeliveryEvent[] = [];
      engine.on("delivery", (e) => {
        events.push(e);
        h.texts.push(e.error ?? "", e.hint ?? "");
      });
      if (c.http) h.fake.failNext(503, { count: 2 });
      const { firing, fingerprint } = issuePair();
      engine.start();
      await engine.submit([firing]);
      await vi.waitFor(() => expect(events.some((e) => e.outcome !== "retry")).toBe(true), { timeout: 15_000, interval: 10 });
      expect(events.map((e) => e.outcome)).toEqual([...(c.http ? ["retry", "retry"] : []), "success"]);
      const { left } = await engine.drain(1_000);
      expect(left).toBe(0);
      expect(h.fake.accepted()).toBe(1);
      expect(h.fake.received(fingerprint)).toEqual(["open"]);
      h.expectNoSecrets();
    });
  });
}
