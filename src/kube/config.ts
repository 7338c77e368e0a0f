import { existsSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import type { Cluster, Context, KubeConfig, User } from "@kubernetes/client-node";
import { InputError } from "../errors.js";

export interface KubeConfigOptions {
  /** --kubeconfig FILE */
  readonly kubeconfig?: string | undefined;
  /** --context NAME */
  readonly context?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
}

export interface ResolvedKubeConfig {
  readonly kc: KubeConfig;
  /** Where it came from, for logs and /readyz: "~/.kube/config (context prod)", "in-cluster". */
  readonly source: string;
  readonly context: string;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Finds cluster credentials the way kubectl does: --kubeconfig, then the
 * KUBECONFIG list, then ~/.kube/config, then the in-cluster service account.
 * Returns undefined when there is none: kubecano then runs without
 * enrichment. A named --context that does not exist is an input error.
 */
export async function resolveKubeConfig(opts: KubeConfigOptions = {}): Promise<ResolvedKubeConfig | undefined> {
  const env = opts.env ?? process.env;
  // Decide where credentials are before importing client-node: it is heavy, and not needed without a cluster.
  let found: { kind: "file"; file: string; source: string } | { kind: "list"; files: string[]; source: string } | { kind: "cluster" } | undefined;
  if (opts.kubeconfig !== undefined) {
    if (!existsSync(opts.kubeconfig)) throw new InputError(`kubeconfig not found: ${opts.kubeconfig}`, "check the path given to --kubeconfig");
    found = { kind: "file", file: opts.kubeconfig, source: opts.kubeconfig };
  } else if ((env["KUBECONFIG"] ?? "") !== "" && env["KUBECONFIG"]!.split(path.delimiter).some((f) => f !== "" && existsSync(f))) {
    found = { kind: "list", files: env["KUBECONFIG"]!.split(path.delimiter).filter((f) => f !== "" && existsSync(f)), source: `KUBECONFIG (${env["KUBECONFIG"]})` };
  } else {
    const home = path.join(env["HOME"] ?? homedir(), ".kube", "config");
    if (existsSync(home)) found = { kind: "file", file: home, source: "~/.kube/config" };
    else if ((env["KUBERNETES_SERVICE_HOST"] ?? "") !== "" && existsSync(path.join(SA_DIR, "token"))) found = { kind: "cluster" };
  }
  if (found === undefined) {
    if (opts.context !== undefined) throw new InputError(`no kubeconfig found, so there is no context "${opts.context}"`, "pass --kubeconfig FILE or set KUBECONFIG");
    return undefined;
  }
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  switch (found.kind) {
    case "file":
      loadFile(kc, found.file);
      return withContext(kc, found.source, opts.context);
    case "list": {
      // Merged here as kubectl does (client-node's loadFromDefault reads process.env, stops at a
      // missing file and refuses a name two files share): missing files are skipped, and the
      // first file to set a cluster, user, context or current-context wins.
      const clusters = new Map<string, Cluster>();
      const users = new Map<string, User>();
      const contexts = new Map<string, Context>();
      let current = "";
      for (const file of found.files) {
        const one = new KubeConfig();
        loadFile(one, file);
        for (const c of one.getClusters()) if (!clusters.has(c.name)) clusters.set(c.name, c);
        for (const u of one.getUsers()) if (!users.has(u.name)) users.set(u.name, u);
        for (const c of one.getContexts()) if (!contexts.has(c.name)) contexts.set(c.name, c);
        if (current === "") current = one.getCurrentContext() ?? "";
      }
      kc.loadFromOptions({ clusters: [...clusters.values()], users: [...users.values()], contexts: [...contexts.values()], currentContext: current });
      return withContext(kc, found.source, opts.context);
    }
    case "cluster":
      kc.loadFromCluster();
      if (opts.context !== undefined) throw new InputError(`--context ${opts.context} given, but the only credentials are the in-cluster service account`);
      return { kc, source: "in-cluster service account", context: kc.getCurrentContext() };
  }
}

function withContext(kc: KubeConfig, source: string, context: string | undefined): ResolvedKubeConfig {
  if (context !== undefined) {
    const names = kc.getContexts().map((c) => c.name);
    if (!names.includes(context)) {
      throw new InputError(`no context "${context}" in ${source}`, names.length > 0 ? `known contexts: ${names.join(", ")}` : "the kubeconfig has no contexts");
    }
    kc.setCurrentContext(context);
  }
  const current = kc.getCurrentContext();
  if (current === "" || kc.getCurrentCluster() === null) {
    throw new InputError(`${source} has no current context with a cluster`, "pass --context NAME, or run `kubectl config use-context NAME`");
  }
  return { kc, source: `${source} (context ${current})`, context: current };
}

function loadFile(kc: KubeConfig, file: string): void {
  try {
    kc.loadFromFile(file);
  } catch (e) {
    throw new InputError(`cannot read kubeconfig ${file}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
  }
}
