import { homedir } from "node:os";
import path from "node:path";

/**
 * The state directory, first found: --state-dir, KUBECANO_STATE_DIR, config
 * `stateDir`, $XDG_STATE_HOME/kubecano, ~/.local/state/kubecano. The
 * container image sets KUBECANO_STATE_DIR=/var/lib/kubecano.
 */
export function resolveStateDir(flag: string | undefined, configured: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): string {
  const explicit = flag ?? nonEmpty(env["KUBECANO_STATE_DIR"]) ?? configured;
  if (explicit !== undefined) return path.resolve(cwd, explicit);
  const xdg = nonEmpty(env["XDG_STATE_HOME"]);
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, "kubecano");
  return path.join(nonEmpty(env["HOME"]) ?? homedir(), ".local", "state", "kubecano");
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}
