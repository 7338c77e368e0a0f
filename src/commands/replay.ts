import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { GlobalOptions, Io } from "../cli.js";
import type { Issue } from "../core/issue.js";
import { configDirOf } from "../config/load.js";
import { toDeliveryError } from "../delivery/engine.js";
import { closeDestinations, createDestinations } from "../destinations/index.js";
import { renderConsole } from "../destinations/console/render.js";
import { renderSlack } from "../destinations/slack/render.js";
import type { Destination, Rendered } from "../destinations/types.js";
import { ExitCode, InputError } from "../errors.js";
import { alertmanagerToIssues } from "../sources/alertmanager/to-issues.js";
import { parseReplayText, type ReplayItem } from "../sources/alertmanager/replay-input.js";
import type { RouteDecision } from "../routing/router.js";
import type { WorkflowResult, WorkflowTrace } from "../workflows/engine.js";
import { chalkFor, commandContext } from "./common.js";
import { createPipeline, type ClusterFlags } from "./setup.js";

export interface ReplayOptions extends GlobalOptions, ClusterFlags {
  readonly inputs: readonly string[];
  readonly dryRun: boolean;
  readonly output: "text" | "json" | "slack";
  readonly explain: boolean;
}

interface DestinationOutcome {
  readonly name: string;
  readonly type: string;
  readonly payload?: unknown;
  readonly ok?: boolean;
  readonly detail?: string | undefined;
  readonly error?: string | undefined;
  readonly hint?: string | undefined;
}

interface ReplayedIssue {
  readonly source: string;
  readonly issue: Issue;
  readonly silenced?: string | undefined;
  /** A kubecano.issue/v1 document: replayed as recorded, workflows not run again. */
  readonly recorded?: boolean;
  readonly workflows: readonly WorkflowTrace[];
  readonly routing: { readonly destinations: readonly string[]; readonly why: string; readonly routes: readonly RouteDecision[] };
  readonly destinations: readonly DestinationOutcome[];
}

const MAX_INPUT_BYTES = 64 * 1024 * 1024;
const INPUT_EXTENSIONS = /\.(json|ndjson|jsonl)$/i;

/**
 * `kubecano replay`: runs saved alerts through the whole pipeline (Issues,
 * workflows with cluster enrichment, routing, rendering) and either shows
 * what each destination would get (--dry-run) or sends it.
 * Exit codes: 0 ok, 1 a delivery failed, 2 bad input or config.
 */
export async function replay(opts: ReplayOptions, io: Io): Promise<number> {
  const { loaded, log } = await commandContext(opts, io);
  const items = await readInputs(opts.inputs, io);
  const { pipeline, cluster } = await createPipeline(loaded, opts, { log, env: io.env });
  const destinations = await createDestinations(loaded.config.destinations, { log, stdout: io.stdout, stderr: io.stderr, configDir: configDirOf(loaded) });
  const byName = new Map(destinations.map((d) => [d.name, d]));
  const results: ReplayedIssue[] = [];
  try {
    for (const item of items) {
      const issues = item.issue !== undefined ? [item.issue] : alertmanagerToIssues(item.payload, { clusterName: loaded.config.clusterName, severityMap: loaded.config.severityMap });
      for (const raw of issues) {
        // A recorded Issue (kubecano.issue/v1) was enriched when it was recorded: running the workflows again would add every enrichment twice.
        const r: WorkflowResult = item.issue !== undefined ? { issue: raw, trace: [] } : await pipeline.runWorkflows(raw);
        const routing = pipeline.routeExplained(r.issue);
        const routed = r.silenced !== undefined ? [] : routing.destinations;
        const chosen = routed.map((n) => byName.get(n)).filter((d): d is Destination => d !== undefined);
        const outcomes: DestinationOutcome[] = [];
        for (const d of chosen) {
          if (opts.dryRun) {
            outcomes.push({ name: d.name, type: d.type, payload: payloadOf(d.render(r.issue)) });
          } else {
            outcomes.push(await sendOne(d, r.issue, log));
          }
        }
        results.push({
          source: item.where,
          issue: r.issue,
          silenced: r.silenced,
          ...(item.issue !== undefined ? { recorded: true } : {}),
          workflows: r.trace,
          routing: { destinations: routed, why: r.silenced !== undefined ? `silenced: ${r.silenced}` : routing.why, routes: routing.decisions },
          destinations: outcomes,
        });
      }
    }
  } finally {
    await closeDestinations(destinations);
  }

  const clusterLine = cluster.status().detail;
  if (opts.output === "json") {
    io.stdout.write(`${JSON.stringify({ dryRun: opts.dryRun, cluster: clusterLine, issues: results }, null, 2)}\n`);
  } else if (opts.output === "slack") {
    const messages = results.flatMap((r): { source: string; destination: string | null; message: unknown }[] => {
      const slack = r.destinations.filter((d) => d.type === "slack");
      if (slack.length > 0 && opts.dryRun) return slack.map((d) => ({ source: r.source, destination: d.name, message: d.payload }));
      return r.silenced !== undefined ? [] : [{ source: r.source, destination: null, message: renderSlack(r.issue, { metadata: true }) }];
    });
    io.stdout.write(`${JSON.stringify(messages, null, 2)}\n`);
  } else {
    writeText(results, opts, io, clusterLine);
  }
  const failed = results.some((r) => r.destinations.some((d) => d.ok === false));
  return failed ? ExitCode.FAILURE : ExitCode.OK;
}

async function sendOne(d: Destination, issue: Issue, log: Parameters<Destination["send"]>[1]["log"]): Promise<DestinationOutcome> {
  const timeoutMs = 30_000;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const r = await d.send(issue, { signal, attempt: 1, log: log.child({ destination: d.name }) });
    return { name: d.name, type: d.type, ok: true, detail: r.detail };
  } catch (e) {
    const err = toDeliveryError(e, signal.aborted, timeoutMs);
    return { name: d.name, type: d.type, ok: false, error: err.message, hint: err.hint };
  }
}

function payloadOf(r: Rendered): unknown {
  return r.body;
}

function writeText(results: readonly ReplayedIssue[], opts: ReplayOptions, io: Io, clusterLine: string): void {
  const c = chalkFor(io.stdout, opts, io.env);
  const color = opts.color && io.stdout.isTTY === true && io.env["NO_COLOR"] === undefined;
  results.forEach((r, i) => {
    io.stdout.write(`${c.dim(`── ${r.source} · ${r.issue.aggregationKey} (${i + 1} of ${results.length}) ──`)}\n`);
    if (opts.explain) {
      io.stdout.write(`${c.bold("cluster")}   ${clusterLine}\n${c.bold("workflows")}\n`);
      if (r.recorded === true) io.stdout.write(`  ${c.dim("· not run: a recorded kubecano.issue/v1 Issue keeps the enrichments it was recorded with")}\n`);
      for (const w of r.workflows) {
        const mark = w.matched ? c.green("✔") : c.dim("·");
        io.stdout.write(`  ${mark} ${w.matched ? c.bold(w.workflow) : w.workflow}${w.builtin ? c.dim(" (built-in)") : ""}  ${c.dim(w.why)}\n`);
        for (const a of w.actions) {
          const am = a.status === "ok" ? c.green("✔") : a.status === "skipped" ? c.yellow("-") : c.red("✖");
          const what = a.status === "ok" ? (a.note ?? "") : a.status === "skipped" ? `skipped: ${a.note ?? ""}` : `${a.status}: ${a.error ?? ""}`;
          io.stdout.write(`      ${am} ${a.action.padEnd(18)} ${`${a.ms} ms`.padStart(9)}  ${what}\n`);
        }
      }
      io.stdout.write(`${c.bold("routing")}   → ${r.routing.destinations.length > 0 ? r.routing.destinations.join(", ") : "nowhere"}  ${c.dim(r.routing.why)}\n`);
      for (const d of r.routing.routes) io.stdout.write(`  ${d.matched ? c.green("✔") : c.dim("·")} ${d.matched ? c.bold(d.route) : d.route} → ${d.destinations.join(", ")}  ${c.dim(d.why)}\n`);
      io.stdout.write("\n");
    }
    if (r.silenced !== undefined) {
      io.stdout.write(`${c.yellow("silenced")}: ${r.silenced}; nothing would be sent\n\n`);
      return;
    }
    if (opts.dryRun) {
      io.stdout.write(renderConsole(r.issue, { color, width: Math.min(160, (io.stdout as { columns?: number }).columns ?? 120) }));
      const names = r.destinations.map((d) => `${d.name} (${d.type})`).join(", ");
      io.stdout.write(`${c.dim(`dry run: would send to ${names === "" ? "no destination" : names}; nothing was sent`)}\n\n`);
    } else {
      for (const d of r.destinations) {
        if (d.ok === true) io.stdout.write(`${c.green("✔")} ${d.name}  ${d.detail ?? "sent"}\n`);
        else {
          io.stdout.write(`${c.red("✖")} ${d.name}  ${d.error ?? "failed"}\n`);
          if (d.hint !== undefined) io.stdout.write(`  ${c.yellow("hint:")} ${d.hint}\n`);
        }
      }
      io.stdout.write("\n");
    }
  });
  if (results.length === 0) io.stdout.write("no alerts in the input\n");
}

/** Reads every input; the first bad one stops the command with one line naming it (exit 2). */
async function readInputs(inputs: readonly string[], io: Io): Promise<ReplayItem[]> {
  if (inputs.length === 0) throw new InputError("nothing to replay", "give one or more files or directories, or - for stdin");
  const items: ReplayItem[] = [];
  for (const input of inputs) {
    for (const { name, text } of await readInput(input, io)) {
      const r = parseReplayText(text, name);
      if (!r.ok) throw new InputError(r.error.message, "replay takes an Alertmanager webhook body, a captured request ({headers, body}), an alert object, a kubecano.issue/v1 document (webhook/file destinations), a JSON array of them, or NDJSON");
      items.push(...r.value);
    }
  }
  return items;
}

async function readInput(input: string, io: Io): Promise<{ name: string; text: string }[]> {
  if (input === "-") return [{ name: "stdin", text: await readStdin(io) }];
  let st;
  try {
    st = await stat(input);
  } catch (e) {
    throw new InputError(`${input}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : String((e as Error).message)}`);
  }
  if (st.isDirectory()) {
    const names = (await readdir(input)).filter((n) => INPUT_EXTENSIONS.test(n)).sort();
    if (names.length === 0) throw new InputError(`${input}: no .json, .ndjson or .jsonl files in this directory`);
    const out = [];
    for (const n of names) out.push(...(await readInput(path.join(input, n), io)));
    return out;
  }
  if (st.size > MAX_INPUT_BYTES) throw new InputError(`${input}: ${st.size} bytes is more than replay reads (${MAX_INPUT_BYTES})`);
  try {
    return [{ name: input, text: await readFile(input, "utf8") }];
  } catch (e) {
    throw new InputError(`${input}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

async function readStdin(io: Io): Promise<string> {
  const stdin = (io as { stdin?: NodeJS.ReadableStream }).stdin ?? process.stdin;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_INPUT_BYTES) throw new InputError(`stdin: more than ${MAX_INPUT_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8");
}
