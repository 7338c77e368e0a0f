import "./ink-env.js";
import { writeFileSync } from "node:fs";
import { render } from "ink";
import { App } from "./app.js";
import type { FeedSource } from "./feed-client.js";
import type { LogRing } from "./log-ring.js";
import { IssueStore } from "./store.js";

export interface RunTuiOptions {
  readonly source: FeedSource;
  readonly stdout: NodeJS.WriteStream;
  readonly stdin: NodeJS.ReadStream;
  readonly stderr: NodeJS.WriteStream;
  readonly color: boolean;
  /** Shown in the header instead of the source's target. */
  readonly target?: string;
  readonly logs?: LogRing | undefined;
  /** Closes the UI when it settles (listen --tui: the daemon is stopping). */
  readonly until?: Promise<unknown> | undefined;
  /** Close the UI on SIGINT, SIGTERM and SIGHUP (when nobody else owns them). */
  readonly handleSignals?: boolean;
  /** Render statistics are written to this file as JSON (benchmarks). */
  readonly statsFile?: string | undefined;
  readonly maxIssues?: number;
}

export interface TuiResult {
  /** The feed failed for good (wrong credentials...) before the user quit. */
  readonly failed: string | undefined;
  readonly renders: number;
}

const ENTER_ALT_SCREEN = "\u001b[?1049h\u001b[H\u001b[2J";
const LEAVE_ALT_SCREEN = "\u001b[?1049l";
const SHOW_CURSOR = "\u001b[?25h";

/**
 * Runs the interactive UI on the terminal until the user quits (or `until`
 * settles, or a signal comes): the alternate screen while it runs, and the
 * terminal as it was afterwards (main screen, cursor visible, raw mode off),
 * also when rendering fails.
 */
export async function runTui(opts: RunTuiOptions): Promise<TuiResult> {
  const store = new IssueStore({ maxIssues: opts.maxIssues });
  const unfollow = store.follow(opts.source);
  const stats = { renders: 0, totalRenderMs: 0, maxRenderMs: 0 };
  let statsTimer: NodeJS.Timeout | undefined;
  const writeStats = (): void => {
    if (opts.statsFile === undefined) return;
    try {
      writeFileSync(opts.statsFile, JSON.stringify({ ...stats, issues: store.size, at: Date.now() }));
    } catch {
      // Statistics are best effort.
    }
  };
  if (opts.statsFile !== undefined) {
    statsTimer = setInterval(writeStats, 1_000);
    statsTimer.unref();
  }

  opts.stdout.write(ENTER_ALT_SCREEN);
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    if (opts.stdin.isTTY === true && typeof opts.stdin.setRawMode === "function") opts.stdin.setRawMode(false);
    opts.stdout.write(SHOW_CURSOR + LEAVE_ALT_SCREEN);
  };
  process.once("exit", restore);

  const instance = render(<App store={store} target={opts.target ?? opts.source.target} color={opts.color} logs={opts.logs} />, {
    stdout: opts.stdout,
    stdin: opts.stdin,
    stderr: opts.stderr,
    exitOnCtrlC: false,
    patchConsole: true,
    maxFps: 30,
    onRender: ({ renderTime }) => {
      stats.renders++;
      stats.totalRenderMs += renderTime;
      if (renderTime > stats.maxRenderMs) stats.maxRenderMs = renderTime;
    },
  });
  const close = (): void => instance.unmount();
  const signals: NodeJS.Signals[] = opts.handleSignals === true ? ["SIGINT", "SIGTERM", "SIGHUP"] : [];
  for (const s of signals) process.on(s, close);
  void opts.until?.then(close, close);
  opts.source.start();
  try {
    await instance.waitUntilExit();
  } finally {
    for (const s of signals) process.off(s, close);
    instance.cleanup();
    restore();
    process.off("exit", restore);
    unfollow();
    opts.source.stop();
    if (statsTimer !== undefined) clearInterval(statsTimer);
    writeStats();
  }
  const conn = store.connection;
  return { failed: conn.kind === "failed" ? conn.error : undefined, renders: stats.renders };
}
