import type { Key } from "ink";
import { filterText, nextMinSeverity } from "./format.js";
import { NO_FILTER, type IssueFilter, type IssueRow } from "./store.js";

/** What the screen shows besides the data: one value, changed only by keys. */
export interface UiState {
  readonly view: "list" | "detail";
  readonly help: boolean;
  readonly filter: IssueFilter;
  /** Typing a filter after `/`. */
  readonly editing: boolean;
  /** undefined: the newest Issue, following new ones as they arrive. */
  readonly selectedId: string | undefined;
  readonly detailId: string | undefined;
  readonly detailScroll: number;
  readonly showLogs: boolean;
}

export const INITIAL_UI: UiState = { view: "list", help: false, filter: NO_FILTER, editing: false, selectedId: undefined, detailId: undefined, detailScroll: 0, showLogs: true };

/** What a key needs to know about the screen as it is drawn now. */
export interface KeyContext {
  /** The rows the list shows (filter applied). */
  readonly rows: readonly IssueRow[];
  /** The row drawn as selected last time: where the selection stays when its Issue is filtered out or gone. */
  readonly drawnIndex: number;
  readonly listRows: number;
  readonly detailHeight: number;
  readonly detailLines: number;
  readonly hasLogs: boolean;
}

export type KeyEffect = "quit" | "togglePause" | undefined;

/**
 * The keys, as a pure function of the state: the key handler reads the
 * latest state (not the one of the last render), so keys typed faster than
 * the screen redraws (`/` then `api` in one burst) all count.
 */
export function reduceKey(s: UiState, input: string, key: Key, ctx: KeyContext): { state: UiState; effect?: KeyEffect } {
  const same = { state: s };
  if (key.ctrl && input === "c") return { state: s, effect: "quit" };
  const found = selectedIndex(s, ctx.rows);
  const index = found >= 0 ? found : Math.max(0, Math.min(ctx.drawnIndex, ctx.rows.length - 1));
  const select = (i: number): UiState => {
    const clamped = Math.max(0, Math.min(i, ctx.rows.length - 1));
    return { ...s, selectedId: clamped <= 0 ? undefined : ctx.rows[clamped]?.issue.id };
  };
  if (s.editing) {
    if (key.return) return { state: { ...s, editing: false } };
    if (key.escape) return { state: { ...s, editing: false, filter: { ...s.filter, text: "" } } };
    if (key.backspace || key.delete) return { state: { ...s, filter: { ...s.filter, text: s.filter.text.slice(0, -1) } } };
    if (key.ctrl && input === "u") return { state: { ...s, filter: { ...s.filter, text: "" } } };
    if (key.upArrow) return { state: select(index - 1) };
    if (key.downArrow) return { state: select(index + 1) };
    const text = input.replace(/[\u0000-\u001f\u007f]/g, "");
    if (text !== "" && !key.ctrl && !key.meta) return { state: { ...s, filter: { ...s.filter, text: s.filter.text + text } } };
    return same;
  }
  if (s.help) return input === "q" ? { state: s, effect: "quit" } : { state: { ...s, help: false } };
  if (input === "q") return { state: s, effect: "quit" };
  if (input === "?") return { state: { ...s, help: true } };
  if (input === "p") return { state: s, effect: "togglePause" };
  if (input === "l" && ctx.hasLogs) return { state: { ...s, showLogs: !s.showLogs } };
  if (s.view === "detail") {
    const max = Math.max(0, ctx.detailLines - ctx.detailHeight);
    const scroll = (to: number): { state: UiState } => ({ state: { ...s, detailScroll: Math.max(0, Math.min(max, to)) } });
    const at = Math.min(s.detailScroll, max);
    if (key.escape || key.leftArrow || key.backspace) return { state: { ...s, view: "list" } };
    if (key.upArrow || input === "k") return scroll(at - 1);
    if (key.downArrow || input === "j") return scroll(at + 1);
    if (key.pageUp || input === "b") return scroll(at - ctx.detailHeight + 1);
    if (key.pageDown || input === " ") return scroll(at + ctx.detailHeight - 1);
    if (key.home || input === "g") return scroll(0);
    if (key.end || input === "G") return scroll(max);
    return same;
  }
  if (key.upArrow || input === "k") return { state: select(index - 1) };
  if (key.downArrow || input === "j") return { state: select(index + 1) };
  if (key.pageUp) return { state: select(index - ctx.listRows) };
  if (key.pageDown) return { state: select(index + ctx.listRows) };
  if (key.home || input === "g") return { state: select(0) };
  if (key.end || input === "G") return { state: select(ctx.rows.length - 1) };
  if ((key.return || key.rightArrow) && ctx.rows[index] !== undefined) {
    return { state: { ...s, view: "detail", detailId: ctx.rows[index]!.issue.id, detailScroll: 0 } };
  }
  if (input === "/") return { state: { ...s, editing: true } };
  if (input === "s") return { state: { ...s, filter: { ...s.filter, minSeverity: nextMinSeverity(s.filter.minSeverity) } } };
  if (input === "f") return { state: { ...s, filter: { ...s.filter, firingOnly: !s.filter.firingOnly } } };
  if (key.escape && filterText(s.filter) !== "") return { state: { ...s, filter: NO_FILTER } };
  return same;
}

/** Where the selected Issue is in `rows`: 0 when following the newest, -1 when it is not there. */
export function selectedIndex(s: UiState, rows: readonly IssueRow[]): number {
  if (s.selectedId === undefined) return 0;
  return rows.findIndex((r) => r.issue.id === s.selectedId);
}
