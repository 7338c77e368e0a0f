import { Writable } from "node:stream";
import type { ContractFake, DestinationContractCase } from "./types.js";

/**
 * The console destination (JSON lines, so the output can be read back). Its
 * "fake" is the stream it writes to, handed to the destination through the
 * runner's `deps` extension (see test/unit/destination-contract.test.ts).
 */
export const contractCase: DestinationContractCase = {
  type: "console",
  http: false,
  resolves: false,
  async start() {
    let out = "";
    const stdout = new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const issues = (): { fingerprint?: unknown; status?: unknown }[] =>
      out
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as { fingerprint?: unknown; status?: unknown });
    const unsupported = (): never => {
      throw new Error("the console destination speaks no HTTP: no faults to inject");
    };
    const fake: ContractFake & { deps: { stdout: NodeJS.WritableStream } } = {
      params: { format: "json", color: "never" },
      secrets: [],
      deps: { stdout },
      failNext: unsupported,
      hangNext: unsupported,
      received: (fingerprint) => issues().filter((i) => i.fingerprint === fingerprint).map(() => "open"),
      accepted: () => issues().length,
      close: async () => undefined,
    };
    return fake;
  },
};
