import type { GlobalOptions, Io } from "../cli.js";
import { configDirOf } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { createIssue, type Issue } from "../core/issue.js";
import { toDeliveryError } from "../delivery/engine.js";
import { closeDestinations, createDestination } from "../destinations/index.js";
import { ExitCode, InputError } from "../errors.js";
import { VERSION } from "../version.js";
import { chalkFor, commandContext } from "./common.js";

export interface TestDestinationOptions extends GlobalOptions {
  readonly names: readonly string[];
  readonly json: boolean;
}

export interface TestResult {
  readonly destination: string;
  readonly type: string;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly detail?: string | undefined;
  readonly error?: string | undefined;
  readonly code?: string | undefined;
  readonly retryable?: boolean | undefined;
  readonly hint?: string | undefined;
}

/** The Issue sent by test-destination: INFO, clearly labelled, nothing to act on. */
export function testIssue(clusterName: string, now = new Date()): Issue {
  return createIssue(
    {
      title: "kubecano test notification: please ignore",
      description: `This is a test sent by \`kubecano test-destination\` (kubecano ${VERSION}) to check that kubecano can reach this destination. Nothing is wrong and no action is needed.`,
      aggregationKey: "KubecanoTestNotification",
      severity: "INFO",
      status: "FIRING",
      source: "manual",
      type: "alert",
      subject: { kind: "", name: "", labels: { alertname: "KubecanoTestNotification", kubecano_test: "true" }, annotations: {} },
      startsAt: now.toISOString(),
      clusterName,
      fingerprint: `test-${now.getTime().toString(16)}`,
    },
    now,
  );
}

/** Sends the test Issue to each selected destination, one after the other. */
export async function testDestinations(config: Config, names: readonly string[], deps: Parameters<typeof createDestination>[1], timeoutMs = 30_000): Promise<TestResult[]> {
  const unknown = names.filter((n) => !config.destinations.some((d) => d.name === n));
  if (unknown.length > 0) {
    throw new InputError(
      `unknown destination${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}`,
      `configured destinations: ${config.destinations.map((d) => d.name).join(", ")}`,
    );
  }
  const selected = names.length === 0 ? config.destinations : config.destinations.filter((d) => names.includes(d.name));
  const issue = testIssue(config.clusterName);
  const results: TestResult[] = [];
  for (const dc of selected) {
    const started = performance.now();
    const dest = await createDestination(dc, deps);
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const log = deps.log.child({ destination: dc.name });
      const r = await dest.send(issue, { signal, attempt: 1, log });
      let detail = r.detail;
      if (dest.resolvesIncidents === true) {
        // Leave nothing open: the test incident is resolved at once.
        const resolved = { ...issue, id: `${issue.id}-resolved`, status: "RESOLVED" as const, endsAt: new Date().toISOString() };
        const rr = await dest.send(resolved, { signal, attempt: 1, log });
        detail = `${detail ?? "sent"}; resolved${rr.detail !== undefined ? ` (${rr.detail})` : ""}`;
      }
      results.push({ destination: dc.name, type: dc.type, ok: true, durationMs: Math.round(performance.now() - started), detail });
    } catch (e) {
      const err = toDeliveryError(e, signal.aborted, timeoutMs);
      results.push({ destination: dc.name, type: dc.type, ok: false, durationMs: Math.round(performance.now() - started), error: err.message, code: err.code, retryable: err.retryable, hint: err.hint });
    } finally {
      await dest.close?.();
    }
  }
  await closeDestinations([]);
  return results;
}

export async function runTestDestination(opts: TestDestinationOptions, io: Io): Promise<number> {
  const { loaded, log, scrub } = await commandContext(opts, io);
  const results = (await testDestinations(loaded.config, opts.names, { log, stdout: io.stdout, stderr: io.stderr, configDir: configDirOf(loaded) })).map((r) => ({
    ...r,
    ...(r.error !== undefined ? { error: scrub(r.error) } : {}),
  }));
  if (opts.json) {
    io.stdout.write(`${JSON.stringify({ ok: results.every((r) => r.ok), results }, null, 2)}\n`);
  } else {
    const c = chalkFor(io.stdout, opts, io.env);
    const width = Math.max(...results.map((r) => r.destination.length));
    for (const r of results) {
      const name = r.destination.padEnd(width);
      if (r.ok) {
        io.stdout.write(`${c.green("✔")} ${c.bold(name)}  ${r.detail ?? "ok"} ${c.dim(`(${r.type}, ${r.durationMs} ms)`)}\n`);
      } else {
        io.stdout.write(`${c.red("✖")} ${c.bold(name)}  ${r.error ?? "failed"} ${c.dim(`(${r.type}, ${r.durationMs} ms${r.retryable === true ? ", temporary: try again" : ""})`)}\n`);
        if (r.hint !== undefined) io.stdout.write(`  ${" ".repeat(width)}  ${c.yellow("hint:")} ${r.hint}\n`);
      }
    }
    const failed = results.filter((r) => !r.ok).length;
    io.stdout.write(failed === 0 ? `${c.green(`all ${results.length} destination${results.length === 1 ? "" : "s"} ok`)}\n` : `${c.red(`${failed} of ${results.length} failed`)}\n`);
  }
  return results.every((r) => r.ok) ? ExitCode.OK : ExitCode.FAILURE;
}
