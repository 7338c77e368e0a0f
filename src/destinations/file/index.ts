import { constants } from "node:fs";
import { mkdir, open } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { toIssueDocument } from "../../core/issue-document.js";
import type { Issue } from "../../core/issue.js";
import { DeliveryError, type Destination, type DestinationDeps, type SendResult } from "../types.js";
import type { FileParams } from "./params.js";

/**
 * The file destination. Each Issue is ONE line written with ONE write(2) on
 * a descriptor opened with O_APPEND, so lines of concurrent writers
 * (replicas on a shared volume, a second kubecano) never interleave and a
 * line is never split, however large. The file is opened per Issue, so a
 * rotated-away file is simply created again.
 */
export function create(name: string, params: FileParams, deps: DestinationDeps): Destination {
  const file = resolvePath(params.path, deps.configDir ?? process.cwd());
  return {
    name,
    type: "file",
    render: (issue) => ({ kind: "json", body: toIssueDocument(issue, new Date()) }),
    async send(issue: Issue): Promise<SendResult> {
      const line = Buffer.from(`${JSON.stringify(toIssueDocument(issue, new Date()))}\n`, "utf8");
      await appendLine(file, line);
      return { detail: `appended to ${file} (${line.length} bytes)` };
    },
  };
}

/** `~` and `~/x` are the home directory; a relative path is resolved against `base` (the config file's directory). */
export function resolvePath(p: string, base: string, home: string = process.env["HOME"] || homedir()): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return path.join(home, p.slice(2));
  return path.resolve(base, p);
}

/** Appends `line` in one write; on a short write (disk full) the partial line is taken back where that is safe. */
export async function appendLine(file: string, line: Buffer): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fileError(e, file, "create the directory of");
  }
  let fh;
  try {
    fh = await open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
  } catch (e) {
    throw fileError(e, file, "open");
  }
  try {
    const before = (await fh.stat()).size;
    let written: number;
    try {
      ({ bytesWritten: written } = await fh.write(line, 0, line.length));
    } catch (e) {
      throw fileError(e, file, "write to");
    }
    if (written < line.length) {
      // Only the disk filling up mid-write does this. Cut our partial line off if no one appended
      // after it; otherwise end it, so the retried line starts on a line of its own.
      const after = (await fh.stat()).size;
      if (after === before + written) await fh.truncate(before);
      else await fh.write("\n");
      throw new DeliveryError(`cannot write to ${file}: ENOSPC (only ${written} of ${line.length} bytes fitted)`, { retryable: true, code: "enospc", hint: "the disk is full: free space on it" });
    }
  } catch (e) {
    if (e instanceof DeliveryError) throw e;
    throw fileError(e, file, "write to");
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Permanent: the path itself is wrong. Everything else (a full disk, I/O, descriptor limits) may pass. */
const PERMANENT: Readonly<Record<string, (file: string) => string>> = {
  EACCES: (f) => `kubecano (uid ${process.getuid?.() ?? "?"}) may not write ${f}: fix the permissions of the file or its directory, or change params.path`,
  EPERM: (f) => `kubecano may not write ${f}: fix the permissions of the file or its directory, or change params.path`,
  EROFS: () => "the file system is read-only: point params.path at a writable volume",
  EISDIR: () => "params.path is a directory: name a file in it (e.g. issues.ndjson)",
  ENOTDIR: () => "a parent of params.path is a file, not a directory: fix params.path",
  EEXIST: () => "a parent of params.path is a file, not a directory: fix params.path",
  ENOENT: (f) => `the directory of ${f} does not exist and could not be created (a dangling symlink?): fix params.path`,
  ELOOP: () => "params.path has a symlink loop: fix params.path",
  ENAMETOOLONG: () => "params.path is too long",
  EINVAL: () => "params.path is not a valid file name here",
};

const RETRY_HINTS: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full: free space on it",
  EDQUOT: "the disk quota is used up: free space or raise the quota",
  EFBIG: "the file is too large: rotate it (logrotate) or point params.path at a new file",
  EMFILE: "too many open files in kubecano: raise its open-file limit (ulimit -n)",
  ENFILE: "too many open files on this host",
  EIO: "an I/O error on the disk",
};

export function fileError(e: unknown, file: string, action: string): DeliveryError {
  const code = typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "EUNKNOWN";
  const permanent = PERMANENT[code];
  return new DeliveryError(`cannot ${action} ${file}: ${code}`, {
    retryable: permanent === undefined,
    code: code.toLowerCase(),
    hint: permanent !== undefined ? permanent(file) : RETRY_HINTS[code],
  });
}
