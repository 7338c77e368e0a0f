import type { Issue } from "../../core/issue.js";
import { DeliveryError, type Destination, type DestinationDeps, type SendResult } from "../types.js";
import type { ConsoleParams } from "./params.js";
import { renderConsole } from "./render.js";

/** Writes each Issue to stdout (or stderr): the embedded default destination. */
export function create(name: string, params: ConsoleParams, deps: DestinationDeps): Destination {
  const stream = (params.output === "stderr" ? deps.stderr ?? process.stderr : deps.stdout ?? process.stdout) as NodeJS.WritableStream & { isTTY?: boolean };
  const color =
    params.color === "always" ? true : params.color === "never" ? false : stream.isTTY === true && process.env["NO_COLOR"] === undefined;
  const render = (issue: Issue): string => (params.format === "json" ? `${JSON.stringify(issue)}\n` : `${renderConsole(issue, { color })}\n`);
  return {
    name,
    type: "console",
    render: (issue) => ({ kind: "text", body: render(issue) }),
    send(issue: Issue): Promise<SendResult> {
      const text = render(issue);
      return new Promise((resolve, reject) => {
        stream.write(text, (err) =>
          err
            ? reject(new DeliveryError(`cannot write to ${params.output}: ${err.message}`, { retryable: false, code: "write_failed" }))
            : resolve({ detail: `printed to ${params.output}` }),
        );
      });
    },
  };
}
