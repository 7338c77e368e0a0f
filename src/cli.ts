import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ConfigError, ExitCode, KubecanoError, errorMessage } from "./errors.js";
import { parseDuration } from "./core/duration.js";
import { stopTracing } from "./observability/tracing.js";
import { VERSION } from "./version.js";

/**
 * The commander program: flags only. Each action imports its command module
 * when it runs, so `kubecano --version` loads neither the Slack client nor
 * anything else heavy. Returns the exit code; bin/kubecano exits with it.
 */

export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

const defaultIo = (): Io => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });

/** Options every command accepts. */
export interface GlobalOptions {
  readonly config?: string;
  readonly logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
  readonly logFormat?: "json" | "pretty";
  readonly color: boolean;
}

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command("kubecano")
    .description("Turn Alertmanager alerts and Kubernetes events into enriched Issues and route them to Slack and other destinations.")
    .version(VERSION, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help for a command")
    .addOption(new Option("-c, --config <file>", "config file (default: search for kubecano.config.* / .kubecanorc* in the current directory)").env("KUBECANO_CONFIG"))
    .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info").env("KUBECANO_LOG_LEVEL"))
    .addOption(new Option("--log-format <format>", "log format (default: pretty on a terminal, JSON otherwise)").choices(["json", "pretty"]).env("KUBECANO_LOG_FORMAT"))
    .option("--no-color", "disable colours (NO_COLOR is honoured too)")
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    })
    .exitOverride()
    .addHelpText(
      "after",
      `
Examples:
  $ kubecano listen                          receive Alertmanager webhooks on :8080, print Issues here
  $ kubecano listen -c kubecano.config.yaml  route them to the destinations in a config file
  $ kubecano watch                           watch the cluster: crash loops, OOM kills, failed Jobs... as Issues here
  $ kubecano test-destination slack-main     send a test notification to one destination
  $ kubecano config validate                 check a config file before deploying it
  $ kubecano deliveries                      what is waiting or failed in the durable queue
  $ kubecano tui --url http://127.0.0.1:8080 live Issues of a running kubecano in a terminal UI

Exit codes: 0 ok, 1 failed (a delivery, a validation), 2 bad usage, config or input, 70 internal error.
Docs: README.md`,
    );

  program
    .command("listen")
    .description("run the webhook server: receive Alertmanager alerts and deliver them as Issues")
    .option("--host <host>", "address to listen on (default: server.host, 0.0.0.0)")
    .option("--port <port>", "port to listen on (default: server.port, 8080)", parsePort)
    .addOption(new Option("--state-dir <dir>", "directory of the durable queue (default: stateDir, or $XDG_STATE_HOME/kubecano, ~/.local/state/kubecano)").env("KUBECANO_STATE_DIR"))
    .option("--ephemeral", "keep the queue in memory only: nothing survives a restart")
    .option("--shutdown-grace <duration>", "how long SIGTERM waits for deliveries, e.g. 20s (default: delivery.shutdownGrace)", parseDurationArg)
    .option("--tls-cert <file>", "serve HTTPS with this PEM certificate (with --tls-key)")
    .option("--tls-key <file>", "PEM private key for --tls-cert")
    .option("--record <dir>", "save every accepted webhook request as a file that `kubecano replay` takes")
    .option("--no-cluster", "do not read the cluster: send Issues without enrichment")
    .option("--kubeconfig <file>", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
    .option("--context <name>", "kubeconfig context to use")
    .option("--watch", "also watch the cluster (events, pods, jobs, nodes, Helm releases) and deliver what goes wrong as Issues")
    .option("-n, --namespace <ns>", "with --watch: watch this namespace (repeat; globs); default: watch.namespaces, else all", collect, [])
    .option("-A, --all-namespaces", "with --watch: watch every namespace")
    .option("--no-leader-election", "with --watch: do not elect a leader among replicas (one replica only)")
    .option("--tui", "show live Issues in a terminal UI here (logs go to its log pane; q stops kubecano)")
    .addHelpText(
      "after",
      `
Endpoints:
  POST /api/alerts   Alertmanager webhook (webhook_configs url)
  GET  /api/issues   recent Issues and their deliveries (JSON; server.auth applies)
  GET  /api/issues/stream  live feed (Server-Sent Events) for kubecano tui
  GET  /healthz      liveness (alias /livez)
  GET  /readyz       readiness
  GET  /metrics      Prometheus metrics

Examples:
  $ kubecano listen
  $ kubecano listen --port 9095 --log-format json
  $ kubecano listen --watch                  the in-cluster daemon: webhooks and the cluster's own trouble
  $ curl -H 'Content-Type: application/json' --data @alert.json http://127.0.0.1:8080/api/alerts

Alerts are answered 202 only once stored in the state directory; a restart (even kill -9)
loses nothing that was acknowledged. Stops on SIGTERM or Ctrl-C: stops accepting, delivers
for up to --shutdown-grace (20s), and keeps the rest for the next start.`,
    )
    .action(async (opts: { host?: string; port?: number; stateDir?: string; ephemeral?: boolean; shutdownGrace?: number; tlsCert?: string; tlsKey?: string; record?: string; cluster: boolean; kubeconfig?: string; context?: string; watch?: boolean; namespace: string[]; allNamespaces?: boolean; leaderElection: boolean; tui?: boolean }, cmd: Command) => {
      const { listen } = await import("./commands/listen.js");
      const { shutdownGrace, namespace, ...rest } = opts;
      setExit(await listen({ ...globals(cmd), ...rest, namespaces: namespace, ...(shutdownGrace !== undefined ? { shutdownGraceMs: shutdownGrace } : {}) }, io));
    });

  program
    .command("watch")
    .description("watch the cluster and turn what goes wrong (crash loops, OOM kills, image pulls, scheduling, quotas, failed Jobs, nodes, Helm releases) into enriched Issues")
    .option("-n, --namespace <ns>", "watch this namespace (repeat; globs like team-*); default: watch.namespaces, else all", collect, [])
    .option("-A, --all-namespaces", "watch every namespace")
    .option("--kubeconfig <file>", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
    .option("--context <name>", "kubeconfig context to use")
    .option("--send", "deliver Issues through the configured routes and destinations (default: print them here)")
    .option("--dry-run", "show what each configured destination would get; send nothing")
    .addOption(new Option("-o, --output <format>", "text, or json (one JSON line per Issue)").choices(["text", "json"]).default("text"))
    .option("--no-leader-election", "with --send: do not elect a leader among replicas (one replica only)")
    .addOption(new Option("--state-dir <dir>", "with --send: directory of the durable queue (default: as for listen)").env("KUBECANO_STATE_DIR"))
    .option("--ephemeral", "with --send: keep the queue in memory only")
    .option("--tui", "show the Issues in a terminal UI here (logs go to its log pane; q stops watching)")
    .addHelpText(
      "after",
      `
What is reported (each at most once per workload and reason per watch.rateLimitWindow, 4h):
  CrashLoopBackOff, OOMKilled, ImagePullBackOff, CreateContainerConfigError, Evicted,
  FailedScheduling, FailedMount, QuotaExceeded, JobFailed, NodeNotReady,
  HelmReleaseFailed, HelmReleasePending (and Unhealthy with watch.unhealthy: true).
The current state is reported once at start (a pod crash looping now), history is not.

Examples:
  $ kubecano watch                                 live Issues from the current context, here
  $ kubecano watch -n shop -n 'team-*' --context prod
  $ kubecano watch -o json | jq 'select(.severity == "HIGH")'
  $ kubecano watch --dry-run -c kubecano.config.yaml   what Slack would get
  $ kubecano watch --send -c kubecano.config.yaml      deliver (leader election among replicas)

With --send, replicas elect a leader on a Lease (watch.leaderElection): one watches and
sends, the others stand by and take over within the lease duration. Stops on Ctrl-C.`,
    )
    .action(async (opts: { namespace: string[]; allNamespaces?: boolean; kubeconfig?: string; context?: string; send?: boolean; dryRun?: boolean; output: "text" | "json"; leaderElection: boolean; stateDir?: string; ephemeral?: boolean; tui?: boolean }, cmd: Command) => {
      const { watch } = await import("./commands/watch.js");
      const { namespace, ...rest } = opts;
      setExit(await watch({ ...globals(cmd), ...rest, namespaces: namespace }, io));
    });

  program
    .command("replay")
    .description("run saved alerts through the pipeline (workflows, cluster enrichment, routing) and show or send the result")
    .argument("<inputs...>", "files or directories (.json, .ndjson, .jsonl), or - for stdin")
    .option("--dry-run", "render what each destination would get and send nothing")
    .addOption(new Option("-o, --output <format>", "text: a terminal preview; json: every rendered payload; slack: the Block Kit JSON").choices(["text", "json", "slack"]).default("text"))
    .option("--explain", "show which workflows matched and why, each action's result and timing, and the destinations chosen")
    .option("--no-cluster", "skip enrichment that reads the cluster")
    .option("--kubeconfig <file>", "kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
    .option("--context <name>", "kubeconfig context to use")
    .addHelpText(
      "after",
      `
Inputs: an Alertmanager webhook body, a captured request ({headers, body}, what
\`listen --record\` writes), one alert object, a kubecano.issue/v1 document (what
the webhook destination sends and the file destination writes: replayed as
recorded, without running the workflows again), a JSON array of them, or NDJSON.

Exit codes: 0 ok, 1 a delivery failed, 2 bad input or config.

Examples:
  $ kubecano replay alert.json --dry-run --explain
  $ kubecano replay recorded/ --dry-run -o json > payloads.json
  $ kubecano replay alert.json --dry-run -o slack | jq '.[0].message.blocks'
  $ kubectl get --raw ... | kubecano replay - --context prod --dry-run
  $ kubecano replay alert.json -c kubecano.config.yaml      # really sends`,
    )
    .action(async (inputs: string[], opts: { dryRun?: boolean; output: "text" | "json" | "slack"; explain?: boolean; cluster: boolean; kubeconfig?: string; context?: string }, cmd: Command) => {
      const { replay } = await import("./commands/replay.js");
      setExit(await replay({ ...globals(cmd), inputs, dryRun: opts.dryRun === true, output: opts.output, explain: opts.explain === true, cluster: opts.cluster, kubeconfig: opts.kubeconfig, context: opts.context }, io));
    });

  program
    .command("test-destination")
    .description("send a clearly marked test Issue to destinations and report whether each accepted it")
    .argument("[names...]", "destination names from the config (default: all)")
    .option("--json", "print results as JSON")
    .addHelpText(
      "after",
      `
Exits 0 only when every destination accepted the test, 1 otherwise: usable as a CI check.

Examples:
  $ kubecano test-destination
  $ kubecano test-destination slack-main --json
  $ SLACK_BOT_TOKEN=xoxb-... kubecano test-destination -c deploy/kubecano.yaml slack-main`,
    )
    .action(async (names: string[], opts: { json?: boolean }, cmd: Command) => {
      const { runTestDestination } = await import("./commands/test-destination.js");
      setExit(await runTestDestination({ ...globals(cmd), names, json: opts.json === true }, io));
    });

  program
    .command("tui")
    .description("live Issues of a running kubecano in a terminal UI: what came in, where it was sent, what failed")
    .addOption(new Option("--url <url>", "kubecano's address, e.g. http://127.0.0.1:8080 (http://USER:PASSWORD@... for basic auth)").env("KUBECANO_URL"))
    .addOption(new Option("--token <token>", "bearer token (kubecano's server.auth.bearerToken)").env("KUBECANO_TOKEN"))
    .option("--context <name>", "find kubecano's pod in this kubeconfig context and port-forward to it")
    .option("-n, --namespace <ns>", "with --context: the namespace of kubecano's pod (default: look in all)")
    .option("--kubeconfig <file>", "with --context: kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
    .option("--no-tui", "print one line per Issue instead (the default when stdout is not a terminal)")
    .option("--json", "print one JSON document per Issue per line instead")
    .option("--once", "print the recent Issues and exit")
    .option("--limit <n>", "recent Issues to load first, at most 1000 (default: 1000 in the UI, 100 otherwise)", parsePositiveInt)
    .addHelpText(
      "after",
      `
Keys: ↑↓ jk move · enter → open · esc ← back · / filter · s minimum severity · f firing only
      p pause · g/G newest/oldest · ? help · q quit

Without a terminal (a pipe, or --no-tui) it prints one line per Issue once it is routed,
or NDJSON with --json, and follows the feed until interrupted. A dropped connection is
retried (1 s, doubling to 15 s) and resumes where it stopped.

Examples:
  $ kubecano tui --url http://127.0.0.1:8080
  $ KUBECANO_TOKEN=... kubecano tui --url https://kubecano.example.com
  $ kubecano tui --context prod                  port-forward to the kubecano pod of a cluster
  $ kubecano tui --url http://127.0.0.1:8080 --json | jq 'select(.issue.severity == "HIGH")'
  $ kubecano tui --url http://127.0.0.1:8080 --once
  $ kubecano listen --tui                        the daemon and its UI in one process`,
    )
    .action(async (opts: { url?: string; token?: string; context?: string; namespace?: string; kubeconfig?: string; tui: boolean; json?: boolean; once?: boolean; limit?: number }, cmd: Command) => {
      const { tui } = await import("./commands/tui.js");
      setExit(await tui({ ...globals(cmd), ...opts }, io));
    });

  const deliveries = program
    .command("deliveries")
    .description("list deliveries that are waiting or failed (dead letters) in the state directory")
    .addOption(new Option("--state-dir <dir>", "state directory (default: as for listen)").env("KUBECANO_STATE_DIR"))
    .addOption(new Option("--state <state>", "which deliveries to list").choices(["pending", "dead", "all", "done"]).default("all"))
    .option("--limit <n>", "at most this many rows", parsePositiveInt, 200)
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
"all" lists pending and dead deliveries (delivered ones are kept for delivery.retention and shown with --state done).

Examples:
  $ kubecano deliveries
  $ kubecano deliveries --state dead --json
  $ kubecano deliveries retry 42          # by the number in the first column, or the full id
  $ kubecano deliveries retry --all-dead
  $ kubecano deliveries drop 42

Works while listen runs: listen picks up retries and drops within a second.`,
    )
    .action(async (opts: { stateDir?: string; state: "pending" | "dead" | "all" | "done"; limit: number; json?: boolean }, cmd: Command) => {
      const { deliveriesList } = await import("./commands/deliveries.js");
      setExit(await deliveriesList({ ...globals(cmd), ...opts, json: opts.json === true }, io));
    });
  deliveries
    .command("retry")
    .description("send a dead (or waiting) delivery again now, with a fresh retry budget")
    .argument("[id]", "delivery number or id (see `kubecano deliveries`)")
    .option("--all-dead", "retry every dead letter")
    .action(async (id: string | undefined, opts: { allDead?: boolean }, cmd: Command) => {
      const { deliveriesRetry } = await import("./commands/deliveries.js");
      setExit(await deliveriesRetry({ ...globals(cmd), ...stateDirOf(cmd), id, allDead: opts.allDead === true }, io));
    });
  deliveries
    .command("drop")
    .description("remove a waiting or dead delivery for good")
    .argument("<id>", "delivery number or id (see `kubecano deliveries`)")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const { deliveriesDrop } = await import("./commands/deliveries.js");
      setExit(await deliveriesDrop({ ...globals(cmd), ...stateDirOf(cmd), id }, io));
    });

  const config = program
    .command("config")
    .description("check, print and describe the configuration")
    .addHelpText(
      "after",
      `
Examples:
  $ kubecano config validate -c kubecano.config.yaml
  $ kubecano config print --json
  $ kubecano config schema > kubecano.schema.json`,
    );
  config
    .command("validate")
    .description("load and validate the config; exit 0 when valid, 1 when not")
    .action(async (_opts: unknown, cmd: Command) => {
      const { configValidate } = await import("./commands/config.js");
      setExit(await configValidate(globals(cmd), io));
    });
  config
    .command("print")
    .description("print the resolved config (defaults filled in, ${VARS} expanded, secrets redacted)")
    .option("--json", "print JSON instead of YAML")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { configPrint } = await import("./commands/config.js");
      setExit(await configPrint({ ...globals(cmd), json: opts.json === true }, io));
    });
  config
    .command("schema")
    .description("print the config's JSON Schema (for editors: yaml-language-server, VS Code)")
    .action(async () => {
      const { configSchemaCommand } = await import("./commands/config.js");
      setExit(await configSchemaCommand(io));
    });

  program
    .command("completion")
    .description("print a shell completion script: commands, options, files and the config's destination names")
    .addArgument(new Argument("[shell]", "the shell").choices(["bash", "zsh", "fish"]))
    .addOption(new Option("--destinations", "print the config's destination names, one per line (the scripts call this)").hideHelp())
    .addHelpText(
      "after",
      `
Examples:
  $ kubecano completion bash > ~/.local/share/bash-completion/completions/kubecano   # bash
  $ source <(kubecano completion bash)                                               # or in ~/.bashrc
  $ kubecano completion zsh > "\${fpath[1]}/_kubecano"                                # zsh, then start a new shell
  $ kubecano completion fish > ~/.config/fish/completions/kubecano.fish              # fish

Destination names (kubecano test-destination <TAB>) come from the config in use when you
press TAB: --config on the line, KUBECANO_CONFIG, or the config found in the current directory.`,
    )
    .action(async (shell: string | undefined, opts: { destinations?: boolean }, cmd: Command) => {
      const { completion } = await import("./commands/completion.js");
      // The root program: the scripts are generated from it.
      setExit(await completion({ program: cmd.parent!, shell, destinations: opts.destinations === true, config: globals(cmd).config }, io));
    });

  return program;
}

function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<{ config?: string; logLevel: GlobalOptions["logLevel"]; logFormat?: GlobalOptions["logFormat"]; color: boolean }>();
  return {
    ...(o.config !== undefined ? { config: o.config } : {}),
    logLevel: o.logLevel,
    ...(o.logFormat !== undefined ? { logFormat: o.logFormat } : {}),
    color: o.color && process.env["NO_COLOR"] === undefined,
  };
}

/** --state-dir given to `deliveries` applies to its subcommands too. */
function stateDirOf(cmd: Command): { stateDir?: string } {
  const v = cmd.optsWithGlobals<{ stateDir?: string }>().stateDir;
  return v !== undefined ? { stateDir: v } : {};
}

function collect(v: string, previous: string[]): string[] {
  return [...previous, v];
}

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) throw new InvalidArgumentError("expected a positive whole number");
  return n;
}

function parseDurationArg(v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration like "500ms", "20s", "1m"');
  return ms;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError("expected a port number between 0 and 65535");
  return n;
}

/** Runs the CLI and returns the exit code. Never exits the process itself. */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  let code: number = ExitCode.OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv], { from: "node" });
    return code;
  } catch (e) {
    return reportError(e, io);
  } finally {
    await stopTracing();
  }
}

/** One line (plus problems and a hint) for user errors; a stack only for bugs. */
export function reportError(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    // "commander.help" is also the code of the help shown for a missing command (exit code 1): not OK.
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return ExitCode.OK;
    // commander has already printed its message.
    return e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  if (e instanceof KubecanoError) {
    io.stderr.write(`kubecano: ${e.message}\n`);
    if (e instanceof ConfigError) for (const p of e.problems) io.stderr.write(`  - ${p}\n`);
    if (e.hint !== undefined) io.stderr.write(`  hint: ${e.hint}\n`);
    return e.exitCode;
  }
  io.stderr.write(`kubecano: internal error: ${errorMessage(e)}\n`);
  if (e instanceof Error && e.stack !== undefined) io.stderr.write(`${e.stack}\n`);
  io.stderr.write("  this is a bug in kubecano: please report it with the lines above\n");
  return ExitCode.INTERNAL;
}
