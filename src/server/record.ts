import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "../observability/logger.js";
import type { RequestMeta } from "./http.js";

/** Headers never written to a recording: credentials, whatever they are called. */
const SECRET_HEADERS = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-access-token|.*token.*|.*secret.*|.*password.*)$/i;

/**
 * `listen --record DIR`: every accepted webhook request becomes one file in
 * the captured-request format `kubecano replay` reads ({headers, path, body}),
 * named by its arrival time so a directory replays in order. A failed write
 * is logged and never affects the answer to Alertmanager.
 */
export class Recorder {
  private seq = 0;
  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  static async open(dir: string, log: Logger): Promise<Recorder> {
    await mkdir(dir, { recursive: true });
    return new Recorder(path.resolve(dir), log);
  }

  record(body: Buffer, meta: RequestMeta, now = new Date()): void {
    const headers = Object.fromEntries(Object.entries(meta.headers).filter(([k, v]) => v !== undefined && !SECRET_HEADERS.test(k)));
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      parsed = body.toString("utf8");
    }
    const file = path.join(this.dir, `${now.toISOString().replace(/:/g, "-")}-${String(++this.seq).padStart(6, "0")}.json`);
    const doc = { captured_from: "kubecano listen --record", received_at: now.toISOString(), headers, path: meta.path, body: parsed };
    writeFile(file, `${JSON.stringify(doc, null, 2)}\n`).catch((e: unknown) => {
      this.log.warn({ file }, `cannot record a webhook request: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    });
  }
}
