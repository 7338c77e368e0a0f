import { EventEmitter } from "node:events";
import type { FeedHub } from "../server/feed.js";
import type { FeedSource, FeedSourceEvents } from "./feed-client.js";

/**
 * The feed of this very process (`kubecano listen --tui`): the hub's
 * snapshot and events, without HTTP. Events arrive synchronously from the
 * engine; the store applies them and the UI redraws on its own schedule.
 */
export class HubFeedSource extends EventEmitter<FeedSourceEvents> implements FeedSource {
  readonly target = "this process";
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly hub: FeedHub,
    private readonly limit = 1000,
  ) {
    super();
  }

  start(): void {
    if (this.unsubscribe !== undefined) return;
    this.emit("state", { kind: "connecting" });
    const snapshot = this.hub.snapshot(this.limit);
    const r = this.hub.subscribe(snapshot.cursor, (e) => this.emit("event", e.event));
    if (!r.ok) {
      // Cannot happen for a cursor taken just now; say so rather than show nothing.
      this.emit("state", { kind: "failed", error: `cannot follow the issue feed: ${r.reason}` });
      return;
    }
    this.unsubscribe = r.unsubscribe;
    this.emit("snapshot", snapshot);
    for (const e of r.backlog) this.emit("event", e.event);
    this.emit("state", { kind: "live", since: Date.now() });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
