// The worker thread of SqliteWriter (sqlite-writer.ts): commits the batches
// it is sent, merging those that queued up while it was busy into one
// transaction, and answers each with its outcome.
import { receiveMessageOnPort, workerData } from "node:worker_threads";
import { WriterCore, type WorkerInit } from "./sqlite-writer.js";

const init = workerData as WorkerInit;
const done = new Int32Array(init.done);
const port = init.port;
let core: WriterCore | undefined;
let openError: { message: string; code?: string | undefined } | undefined;
try {
  core = WriterCore.open(init.file, init.synchronous, init.statements);
} catch (e) {
  // Every batch is refused with this: the store turns it into a 503 and /readyz says why.
  const code = (e as { code?: unknown }).code;
  openError = { message: `cannot open the state database: ${e instanceof Error ? e.message : String(e)}`, code: typeof code === "string" ? code : undefined };
}

type Batch = Parameters<WriterCore["commit"]>[0][number];

port.on("message", (first: readonly Batch[]) => {
  const batches: Batch[] = [...first];
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) batches.push(...(m.message as readonly Batch[]));
  const results = core !== undefined ? core.commit(batches) : batches.map((b) => ({ id: b.id, error: openError }));
  port.postMessage(results);
  // The answer is posted before the id is published: flushSync reads it right after waking.
  Atomics.store(done, 0, batches[batches.length - 1]!.id);
  Atomics.notify(done, 0);
});
port.on("close", () => core?.close());
