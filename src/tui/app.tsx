import { Chalk } from "chalk";
import { Box, Text, useApp, useInput, useStdin, useStdout, type Key } from "ink";
import { Fragment, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { SEVERITIES } from "../core/severity.js";
import { columns, connectionText, countersParts, detailLines, filterText, fit, rowCells, SEVERITY_COLOR, type Columns } from "./format.js";
import { INITIAL_UI, reduceKey, selectedIndex, type UiState } from "./keys.js";
import type { LogRing } from "./log-ring.js";
import type { IssueFilter, IssueRow, IssueStore } from "./store.js";

export interface AppProps {
  readonly store: IssueStore;
  /** Where the feed comes from, for the header. */
  readonly target: string;
  readonly color?: boolean;
  /** Clock for ages and countdowns (tests fix it). */
  readonly now?: () => number;
  /** Redraws for store changes happen at most this often (ms). */
  readonly throttleMs?: number;
  /** Ages and countdowns are redrawn this often (ms); 0: never (tests). */
  readonly tickMs?: number;
  /** `listen --tui`: the daemon's own log lines, shown in a pane (`l` toggles it). */
  readonly logs?: LogRing | undefined;
  /** Called once when the user quits (q, ctrl-c). */
  readonly onQuit?: () => void;
}

type View = "list" | "detail";

const LOG_PANE_LINES = 6;

/**
 * The whole screen: header, issue list or detail, footer. Data comes from
 * the IssueStore (outside React): the component re-reads it on `change`,
 * at most once per throttleMs, so a burst of 100 Issues a second costs ten
 * redraws, not a hundred. Only the rows that fit are rendered.
 */
export function App(props: AppProps): ReactNode {
  const { store } = props;
  const now = props.now ?? Date.now;
  const color = props.color ?? true;
  const chalk = useMemo(() => new Chalk({ level: color ? 2 : 0 }), [color]);
  useStoreVersion(store, props.throttleMs ?? 100);
  useTick(props.tickMs ?? 1_000);
  const logsVersion = useLogs(props.logs, props.throttleMs ?? 100);
  const { columns: width, rows: height } = useTerminalSize();
  const { exit } = useApp();
  const { isRawModeSupported } = useStdin();

  const [ui, setUi] = useState<UiState>(() => ({ ...INITIAL_UI, showLogs: props.logs !== undefined }));
  // The key handler reads and writes this, not `ui`: keys typed before the next redraw see each other.
  const uiRef = useRef(ui);
  const win = useRef({ offset: 0, selectedId: undefined as string | undefined, index: 0 });
  const quitting = useRef(false);
  const { view, help, filter, editing, selectedId, detailId, detailScroll, showLogs } = ui;

  const rows = store.list(filter);
  const headerLines = 2 + (store.connection.kind === "failed" && store.connection.hint !== undefined ? 1 : 0);
  const logLines = props.logs !== undefined && showLogs ? LOG_PANE_LINES + 1 : 0;
  // One line is left free: a frame as tall as the terminal makes ink clear the screen on every redraw.
  const bodyHeight = Math.max(3, height - 1 - headerLines - 1 - 1 - logLines);
  const listRows = bodyHeight - 1;

  // Selection and window: the selected Issue keeps its place on screen while new ones arrive above it.
  const found = selectedIndex(ui, rows);
  const index = found >= 0 ? found : Math.min(win.current.index, Math.max(0, rows.length - 1));
  let offset = win.current.offset;
  if (selectedId !== undefined && selectedId === win.current.selectedId) offset += index - win.current.index;
  if (selectedId === undefined) offset = 0;
  offset = Math.max(0, Math.min(offset, index, Math.max(0, rows.length - listRows)));
  if (index >= offset + listRows) offset = index - listRows + 1;
  win.current = { offset, selectedId, index };

  const detailRow = detailId !== undefined ? store.get(detailId) : undefined;
  const detail = useMemo(
    () => (view === "detail" && detailRow !== undefined ? detailLines(detailRow, chalk, width, now()) : []),
    // Recomputed when the row changes (a new object), the size changes, or time passes (tick).
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [view, detailRow, chalk, width, Math.floor(now() / 1000)],
  );
  const maxScroll = Math.max(0, detail.length - bodyHeight);
  const drawn = useRef({ listRows, bodyHeight, detailLines: detail.length });
  drawn.current = { listRows, bodyHeight, detailLines: detail.length };

  const onKey = (input: string, key: Key): void => {
    // Letters typed faster than they are read arrive as one string: each is a key, except as filter text.
    if (input.length > 1 && !uiRef.current.editing && !key.ctrl && !key.meta) {
      for (const ch of input) onKey(ch, { ...key, return: ch === "\r" });
      return;
    }
    const u = uiRef.current;
    const r = reduceKey(u, input, key, {
      rows: store.list(u.filter),
      drawnIndex: win.current.index,
      listRows: drawn.current.listRows,
      detailHeight: drawn.current.bodyHeight,
      detailLines: drawn.current.detailLines,
      hasLogs: props.logs !== undefined,
    });
    if (r.state !== u) {
      uiRef.current = r.state;
      setUi(r.state);
    }
    if (r.effect === "togglePause") store.togglePause();
    if (r.effect === "quit" && !quitting.current) {
      quitting.current = true;
      props.onQuit?.();
      exit();
    }
  };
  useInput(onKey, { isActive: isRawModeSupported === true });

  const t = now();
  const conn = connectionText(store.connection, t);
  const c = store.counters;
  return (
    <Box flexDirection="column" width={width}>
      <Box height={1}>
        <Text bold>kubecano</Text>
        <Text dimColor>{` · ${props.target} · `}</Text>
        <Text color={color ? conn.color : undefined} wrap="truncate">
          {conn.text}
        </Text>
        {store.paused ? (
          <>
            <Text color={color ? "magenta" : undefined} bold>
              {store.newWhilePaused > 0 ? "  ❚❚ PAUSED (+" : "  ❚❚ PAUSED"}
            </Text>
            {store.newWhilePaused > 0 ? (
              <Text color={color ? "magenta" : undefined} bold>
                {`${store.newWhilePaused} new)`}
              </Text>
            ) : null}
          </>
        ) : null}
      </Box>
      {store.connection.kind === "failed" && store.connection.hint !== undefined ? (
        <Text wrap="truncate" color={color ? "red" : undefined}>
          {`  hint: ${store.connection.hint}`}
        </Text>
      ) : null}
      {/* Clipped rather than wrapped on a narrow terminal. */}
      <Box height={1} overflow="hidden">
        {SEVERITIES.map((s) => (
          <Fragment key={s}>
            <Fixed color={color ? SEVERITY_COLOR[s] : undefined}>{`${s} `}</Fixed>
            <Fixed color={color ? SEVERITY_COLOR[s] : undefined}>{String(c?.bySeverity[s] ?? 0)}</Fixed>
            <Fixed>{"  "}</Fixed>
          </Fragment>
        ))}
        <Fixed dimColor>│</Fixed>
        {countersParts(c).map(([label, value]) => (
          <Fragment key={label}>
            <Fixed dimColor>{label}</Fixed>
            <Fixed dimColor>{value}</Fixed>
          </Fragment>
        ))}
      </Box>
      <Box height={bodyHeight} flexDirection="column" overflowY="hidden">
        {help ? (
          <Help />
        ) : view === "detail" ? (
          detailRow === undefined ? (
            <Text color={color ? "yellow" : undefined}>This Issue is no longer in memory (only the newest are kept). Press esc.</Text>
          ) : (
            detail.slice(Math.min(detailScroll, maxScroll), Math.min(detailScroll, maxScroll) + bodyHeight).map((l, i) => (
              <Text key={i} wrap="truncate-end">
                {l === "" ? " " : l}
              </Text>
            ))
          )
        ) : (
          <IssueList rows={rows} offset={offset} selected={index} height={listRows} cols={columns(width)} now={t} color={color} total={store.size} />
        )}
      </Box>
      {logLines > 0 ? <LogPane lines={props.logs!.tail(LOG_PANE_LINES)} width={width} version={logsVersion} /> : null}
      <Footer view={view} help={help} editing={editing} filter={filter} shown={rows.length} total={store.size} scroll={view === "detail" && detail.length > bodyHeight ? `${Math.min(detailScroll, maxScroll) + 1}-${Math.min(detail.length, Math.min(detailScroll, maxScroll) + bodyHeight)}/${detail.length}` : undefined} logs={props.logs !== undefined} />
    </Box>
  );
}

function IssueList(props: { rows: readonly IssueRow[]; offset: number; selected: number; height: number; cols: Columns; now: number; color: boolean; total: number }): ReactNode {
  const { cols, color } = props;
  const head = `  ${fit("SEV", cols.severity)}${fit("STATUS", cols.status)}${fit("AGE", cols.age)}${fit("TITLE", cols.title)}${cols.subject > 0 ? ` ${fit("SUBJECT", cols.subject)}` : ""}${cols.where > 0 ? ` ${fit("DELIVERED", cols.where)}` : ""}`;
  const visible = props.rows.slice(props.offset, props.offset + props.height);
  return (
    <>
      <Text wrap="truncate" dimColor>
        {head}
      </Text>
      {visible.length === 0 ? (
        <Text dimColor>{props.total === 0 ? "  No Issues yet: they appear here as kubecano receives them." : "  No Issue matches the filter (esc clears it)."}</Text>
      ) : null}
      {visible.map((row, i) => (
        <Row key={row.issue.id} row={row} selected={props.offset + i === props.selected} cols={cols} now={props.now} color={color} />
      ))}
    </>
  );
}

/**
 * One line of the list. Each cell is its own Text: ink measures (and caches,
 * for the life of the process) every distinct string it lays out, so the
 * cells that change every second (age) or with the selection stay small and
 * repetitive, and a row's long texts (title, subject) are measured once.
 */
function Row(props: { row: IssueRow; selected: boolean; cols: Columns; now: number; color: boolean }): ReactNode {
  const { row, selected, cols, color } = props;
  const cells = rowCells(row, props.now);
  const dim = !selected;
  let used = 0;
  const where: ReactNode[] = [];
  for (const [k, w] of cells.where.entries()) {
    const text = `${k > 0 ? " " : ""}${w.text}`;
    if (used + text.length > cols.where) {
      if (used + 2 <= cols.where) where.push(<Text key="more" dimColor>{" …"}</Text>);
      break;
    }
    used += text.length;
    where.push(
      <Text key={k} color={color ? w.color : undefined}>
        {text}
      </Text>,
    );
  }
  return (
    <Box height={1}>
      <Text inverse={selected}>{selected ? "▶ " : "  "}</Text>
      <Text inverse={selected} bold color={color ? SEVERITY_COLOR[row.issue.severity] : undefined}>
        {fit(cells.severity, cols.severity)}
      </Text>
      <Text inverse={selected} color={color ? (cells.status === "FIRING" ? "red" : "green") : undefined}>
        {fit(cells.status, cols.status)}
      </Text>
      <Text inverse={selected} dimColor={dim}>
        {fit(cells.age, cols.age)}
      </Text>
      <Text inverse={selected} wrap="truncate">
        {fit(cells.title, cols.title)}
      </Text>
      {cols.subject > 0 ? (
        <Text inverse={selected} dimColor={dim} wrap="truncate">
          {` ${fit(cells.subject, cols.subject)}`}
        </Text>
      ) : null}
      {cols.where > 0 ? (
        <Text inverse={selected} wrap="truncate">
          {" "}
          {where}
        </Text>
      ) : null}
    </Box>
  );
}

/** A Text that keeps its width in a row (the row's last Text gives way instead). */
function Fixed(props: { children: string; color?: string | undefined; dimColor?: boolean; bold?: boolean }): ReactNode {
  const { children, ...style } = props;
  return (
    <Box flexShrink={0}>
      <Text {...style}>{children}</Text>
    </Box>
  );
}

function LogPane(props: { lines: readonly string[]; width: number; version: number }): ReactNode {
  return (
    <Box flexDirection="column" height={LOG_PANE_LINES + 1}>
      <Text dimColor wrap="truncate">
        {`── log ${"─".repeat(Math.max(0, props.width - 8))}`}
      </Text>
      {props.lines.map((l, i) => (
        <Text key={`${props.version}-${i}`} wrap="truncate-end" dimColor>
          {l === "" ? " " : l}
        </Text>
      ))}
    </Box>
  );
}

function Footer(props: { view: View; help: boolean; editing: boolean; filter: IssueFilter; shown: number; total: number; scroll: string | undefined; logs: boolean }): ReactNode {
  if (props.editing) {
    return (
      <Text wrap="truncate">
        <Text bold>/</Text>
        {props.filter.text}
        <Text inverse> </Text>
        <Text dimColor>{`  ${props.shown} of ${props.total} · enter keeps the filter, esc clears it`}</Text>
      </Text>
    );
  }
  if (props.help) return <Text dimColor>any key closes the help · q quits</Text>;
  if (props.view === "detail") {
    return (
      <Text wrap="truncate" dimColor>
        {`↑↓ jk scroll · pgup/pgdn · g/G top/end · esc ← back · p pause · ? help · q quit${props.scroll !== undefined ? `   lines ${props.scroll}` : ""}`}
      </Text>
    );
  }
  const f = filterText(props.filter);
  // Counts in Texts of their own (see Row); only the list of keys gives way on a narrow terminal.
  return (
    <Box height={1}>
      {f !== "" ? (
        <>
          <Fixed color="cyan">{`filter: ${f} · `}</Fixed>
          <Fixed color="cyan">{String(props.shown)}</Fixed>
          <Fixed color="cyan">{" of "}</Fixed>
          <Fixed color="cyan">{String(props.total)}</Fixed>
          <Fixed color="cyan">{" · "}</Fixed>
        </>
      ) : (
        <>
          <Fixed dimColor>{String(props.total)}</Fixed>
          <Fixed dimColor>{" Issues · "}</Fixed>
        </>
      )}
      <Text dimColor wrap="truncate">{`↑↓ jk move · ⏎ → open · / filter · s severity · f firing · p pause${props.logs ? " · l log" : ""} · ? help · q quit`}</Text>
    </Box>
  );
}

const HELP: readonly [string, string][] = [
  ["↑ ↓  j k", "move in the list; scroll the detail"],
  ["pgup pgdn", "a page up or down"],
  ["g G  home end", "the newest (and follow new ones) / the oldest"],
  ["enter  →", "open the selected Issue: description, labels, links, deliveries, enrichments"],
  ["esc  ←", "back to the list (in the list: clear the filter)"],
  ["/", "filter by text (title, alert, namespace, subject, labels, destinations); enter keeps it"],
  ["s", "cycle the minimum severity: all → INFO → LOW → HIGH"],
  ["f", "only firing Issues"],
  ["p", "pause: the list stops moving, new Issues are counted; p again shows them"],
  ["l", "show or hide the log pane (listen --tui)"],
  ["?", "this help"],
  ["q  ctrl-c", "quit"],
];

function Help(): ReactNode {
  return (
    <Box flexDirection="column">
      <Text bold>Keys</Text>
      {HELP.map(([k, what]) => (
        <Text key={k} wrap="truncate">
          <Text color="cyan">{`  ${k.padEnd(16)}`}</Text>
          {what}
        </Text>
      ))}
      <Text> </Text>
      <Text dimColor wrap="truncate">
        ✔ sent · ✖ failed for good · ↻ failed, will retry · … waiting · enriching… workflows still running
      </Text>
    </Box>
  );
}

/** Re-renders when the store changes, at most once per `throttleMs`. */
function useStoreVersion(store: IssueStore, throttleMs: number): number {
  const [version, setVersion] = useState(store.version);
  useEffect(() => {
    let timer: NodeJS.Timeout | undefined;
    let last = 0;
    const flush = (): void => {
      timer = undefined;
      last = Date.now();
      setVersion(store.version);
    };
    const onChange = (): void => {
      if (timer !== undefined) return;
      timer = setTimeout(flush, Math.max(0, last + throttleMs - Date.now()));
    };
    store.on("change", onChange);
    // Changes between the first render and this effect.
    onChange();
    return () => {
      store.off("change", onChange);
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [store, throttleMs]);
  return version;
}

function useLogs(logs: LogRing | undefined, throttleMs: number): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    if (logs === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const onChange = (): void => {
      timer ??= setTimeout(() => {
        timer = undefined;
        setVersion((v) => v + 1);
      }, throttleMs);
    };
    logs.on("change", onChange);
    return () => {
      logs.off("change", onChange);
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [logs, throttleMs]);
  return version;
}

function useTick(ms: number): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (ms <= 0) return;
    const t = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
}

/** The terminal's size, updated on resize. */
function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = (): { columns: number; rows: number } => ({ columns: Math.max(20, stdout.columns || 100), rows: Math.max(8, stdout.rows || 24) });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = (): void => setSize(read());
    stdout.on("resize", onResize);
    // A resize between the first render and now.
    onResize();
    return () => {
      stdout.off("resize", onResize);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [stdout]);
  return size;
}
