import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DestinationContractCase } from "./types.js";

/**
 * The file destination: its "fake" is a fresh temp directory; what it holds
 * is read back from the NDJSON file. Not HTTP and not an incident tracker:
 * each Issue is one more line.
 */
export const contractCase: DestinationContractCase = {
  type: "file",
  http: false,
  resolves: false,
  async start() {
    const dir = mkdtempSync(path.join(os.tmpdir(), "kubecano-contract-file-"));
    // A parent that does not exist yet: the destination creates it.
    const file = path.join(dir, "audit", "issues.ndjson");
    const lines = (): Record<string, unknown>[] =>
      existsSync(file)
        ? readFileSync(file, "utf8")
            .split("\n")
            .filter((l) => l !== "")
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [];
    const unsupported = (): never => {
      throw new Error("the file destination speaks no HTTP: no faults to inject");
    };
    return {
      params: { path: file },
      secrets: [],
      failNext: unsupported,
      hangNext: unsupported,
      received(fingerprint) {
        const out: ("open" | "update" | "resolve")[] = [];
        let open = false;
        for (const d of lines()) {
          if ((d["issue"] as { fingerprint?: unknown }).fingerprint !== fingerprint) continue;
          if (d["event"] === "issue.resolved") {
            out.push("resolve");
            open = false;
          } else {
            out.push(open ? "update" : "open");
            open = true;
          }
        }
        return out;
      },
      accepted: () => lines().length,
      close: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};
