/**
 * Text helpers shared by renderers. Pure.
 */

/** Cuts `s` to at most `max` characters, ending with `marker` when it had to cut. */
export function truncate(s: string, max: number, marker = "…"): string {
  if (s.length <= max) return s;
  if (max <= marker.length) return marker.slice(0, max);
  // Do not split a surrogate pair: a lone surrogate is invalid UTF-8 on the wire.
  let cut = max - marker.length;
  const code = s.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return s.slice(0, cut) + marker;
}

/** Cuts from the start, keeping the end (the last lines of a log are the interesting ones). */
export function truncateStart(s: string, max: number, marker = "…"): string {
  if (s.length <= max) return s;
  if (max <= marker.length) return marker.slice(0, max);
  let start = s.length - (max - marker.length);
  const code = s.charCodeAt(start);
  if (code >= 0xdc00 && code <= 0xdfff) start++;
  return marker + s.slice(start);
}

/**
 * Removes terminal control sequences and C0/C1 control characters (keeping
 * newline and tab), so text from an alert or a log cannot move the cursor,
 * change the title or hide itself when printed in a terminal.
 */
export function stripControl(s: string): string {
  // Nearly all text has nothing to strip: every sequence removed below starts
  // with a control character, so one cheap scan decides (renderers call this
  // for every field of every Issue).
  // eslint-disable-next-line no-control-regex
  if (!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(s)) return s;
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[ -/]*[0-~]|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "");
}

/** Pads or cuts to exactly `width` columns (by UTF-16 code units; good enough for labels and names). */
export function fit(s: string, width: number): string {
  return s.length > width ? truncate(s, width) : s.padEnd(width);
}
