import type { GlobalOptions, Io } from "../cli.js";
import { ExitCode, InputError, OperationError } from "../errors.js";
import { FeedFatalError, HttpFeedClient, describeNetworkError } from "../tui/feed-client.js";
import { followLines, printSnapshot } from "../tui/lines.js";
import { chalkFor, waitForSignal } from "./common.js";

export interface TuiOptions extends GlobalOptions {
  /** The daemon's URL (--url, KUBECANO_URL). */
  readonly url?: string | undefined;
  /** Bearer token (--token, KUBECANO_TOKEN). */
  readonly token?: string | undefined;
  /** Find kubecano in this kubeconfig context and port-forward to it. */
  readonly context?: string | undefined;
  readonly namespace?: string | undefined;
  readonly kubeconfig?: string | undefined;
  /** false with --no-tui: lines even on a terminal. */
  readonly tui?: boolean;
  readonly json?: boolean;
  /** Print the current list and exit. */
  readonly once?: boolean;
  /** Recent Issues loaded first (1–1000). */
  readonly limit?: number;
  /** Interactive only: stdin to read keys from (default process.stdin). */
  readonly stdin?: NodeJS.ReadStream;
  /** Stops following (lines mode); default: SIGINT or SIGTERM. */
  readonly until?: Promise<unknown>;
}

/**
 * `kubecano tui`: the live issue feed of a running kubecano, as an
 * interactive terminal UI when stdout is a terminal, or as lines (NDJSON
 * with --json) when it is not or with --no-tui. Reaches the daemon by --url
 * or, with --context, through a port-forward to its pod.
 */
export async function tui(opts: TuiOptions, io: Io): Promise<number> {
  if (opts.url !== undefined && opts.context !== undefined) throw new InputError("--url and --context exclude each other", "--url reaches kubecano directly; --context finds its pod in the cluster and port-forwards to it");
  if (opts.url === undefined && opts.context === undefined) {
    throw new InputError("where is kubecano? pass --url URL (or set KUBECANO_URL), or --context CTX to port-forward to its pod", "kubecano tui --url http://127.0.0.1:8080   or   kubecano tui --context prod");
  }
  const interactive = opts.tui !== false && opts.json !== true && opts.once !== true && io.stdout.isTTY === true;
  let forward: Awaited<ReturnType<typeof import("../tui/port-forward.js").forwardToKubecano>> | undefined;
  if (opts.context !== undefined) {
    const { forwardToKubecano } = await import("../tui/port-forward.js");
    forward = await forwardToKubecano({
      context: opts.context,
      namespace: opts.namespace,
      kubeconfig: opts.kubeconfig,
      env: io.env,
      // On a terminal the UI owns the screen: the header's connection state tells the story.
      onError: (m) => void (interactive ? undefined : io.stderr.write(`kubecano: ${m}\n`)),
    });
    if (!interactive) io.stderr.write(`kubecano: following ${forward.description}\n`);
  }
  try {
    let client: HttpFeedClient;
    try {
      client = new HttpFeedClient({ url: forward?.url ?? opts.url!, token: opts.token, limit: opts.limit ?? (interactive ? 1000 : 100) });
    } catch (e) {
      if (e instanceof FeedFatalError) throw new InputError(e.message, e.hint);
      throw e;
    }
    if (interactive) {
      await import("../tui/ink-env.js"); // before ink and React load (see there)
      const { runTui } = await import("../tui/run.js");
      const stdin = opts.stdin ?? process.stdin;
      const stats = io.env["KUBECANO_TUI_STATS"];
      const r = await runTui({
        source: client,
        stdout: io.stdout as NodeJS.WriteStream,
        stderr: io.stderr as NodeJS.WriteStream,
        stdin,
        color: opts.color,
        target: forward?.description ?? client.target,
        handleSignals: true,
        ...(stats !== undefined && stats !== "" ? { statsFile: stats } : {}),
      });
      if (r.failed !== undefined) {
        io.stderr.write(`kubecano: ${r.failed}\n`);
        return ExitCode.FAILURE;
      }
      return ExitCode.OK;
    }
    const printOpts = { out: io.stdout, json: opts.json === true, chalk: chalkFor(io.stdout, opts, io.env) };
    if (opts.once === true) {
      let snapshot;
      try {
        snapshot = await client.fetchSnapshot();
      } catch (e) {
        if (e instanceof FeedFatalError) throw new OperationError(e.message, e.hint);
        throw new OperationError(`cannot reach kubecano at ${client.target}: ${describeNetworkError(e)}`, "is kubecano listen running there? check --url");
      }
      printSnapshot(snapshot, printOpts);
      return ExitCode.OK;
    }
    const r = await followLines(client, { ...printOpts, err: io.stderr, until: opts.until ?? waitForSignal() });
    if (r.failed !== undefined) throw new OperationError(r.failed.error, r.failed.hint);
    return ExitCode.OK;
  } finally {
    await forward?.close();
  }
}
