import { Writable } from "node:stream";
import type { Io } from "../cli.js";
import { InputError } from "../errors.js";
import type { FeedHub } from "../server/feed.js";
import { LogRing } from "./log-ring.js";

/**
 * `listen --tui` and `watch --tui`: the UI in the daemon's own process.
 * The UI owns the terminal, so the command runs with an Io whose stderr
 * (the logs) is a LogRing shown in the UI's log pane and whose stdout (the
 * console destination, printed Issues) goes nowhere: the UI shows them.
 * After the UI closes the ring forwards to the real stderr.
 */
export interface InProcessTui {
  /** The Io the command runs with while the UI is up. */
  readonly io: Io;
  readonly ring: LogRing;
  /** Runs the UI on the real terminal until the user quits or `until` settles. */
  run(hub: FeedHub, target: string, until: Promise<unknown>): Promise<void>;
  /** Logs go to the real stderr again (after the UI closed; also when the command fails before it opened). */
  release(): void;
}

export function inProcessTui(io: Io, color: boolean): InProcessTui {
  if (io.stdout.isTTY !== true) throw new InputError("--tui needs a terminal on stdout", "elsewhere, follow a running kubecano with `kubecano tui --url URL --no-tui`");
  const ring = new LogRing();
  const discard = new Writable({ write: (_c, _e, cb) => cb() });
  return {
    io: { stdout: discard, stderr: ring.stream, env: io.env },
    ring,
    async run(hub, target, until) {
      await import("./ink-env.js"); // before ink and React load (see there)
      const [{ runTui }, { HubFeedSource }] = await Promise.all([import("./run.js"), import("./hub-source.js")]);
      await runTui({
        source: new HubFeedSource(hub),
        stdout: io.stdout as NodeJS.WriteStream,
        stderr: io.stderr as NodeJS.WriteStream,
        stdin: process.stdin,
        color,
        target,
        logs: ring,
        until,
      });
    },
    release: () => ring.release(io.stderr),
  };
}
