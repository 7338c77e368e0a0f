import { existsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../errors.js";
import type { ActionContext, ActionOutput } from "./types.js";

/**
 * A user's action module. Its default export is either a function
 * `(params, ctx) => output` or an object `{ name?, description?, params?, run }`
 * where `params`, if given, is anything with `safeParse` (a zod schema) and
 * validates the config's params at start-up.
 */
export interface CustomAction {
  readonly name: string;
  readonly run: (params: unknown, ctx: ActionContext) => Promise<ActionOutput> | ActionOutput;
  readonly params: unknown;
}

export async function loadCustomAction(modulePath: string, params: Record<string, unknown>, opts: { configDir: string; where: string; name?: string | undefined }): Promise<CustomAction> {
  const file = path.resolve(opts.configDir, modulePath);
  if (!existsSync(file)) throw new ConfigError(`custom action module not found: ${file}`, [`${opts.where}: module ${modulePath} does not exist (paths are relative to the config file)`]);
  let mod: { default?: unknown };
  try {
    mod = /\.(c|m)?ts$/.test(file) ? await importTs(file) : ((await import(pathToFileURL(file).href)) as { default?: unknown });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot load custom action ${file}`, [`${opts.where}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`]);
  }
  const exp = mod.default;
  const fallbackName = opts.name ?? path.basename(file).replace(/\.[^.]+$/, "");
  if (typeof exp === "function") return { name: fallbackName, run: exp as CustomAction["run"], params };
  if (exp !== null && typeof exp === "object" && typeof (exp as { run?: unknown }).run === "function") {
    const def = exp as { name?: unknown; run: CustomAction["run"]; params?: { safeParse?: (v: unknown) => { success: boolean; data?: unknown; error?: { issues?: { path?: PropertyKey[]; message: string }[] } } } };
    let parsed: unknown = params;
    if (def.params !== undefined && typeof def.params.safeParse === "function") {
      const r = def.params.safeParse(params);
      if (!r.success) {
        throw new ConfigError(`invalid params for custom action ${fallbackName}`, (r.error?.issues ?? [{ message: "invalid" }]).map((i) => `${opts.where}.params${(i.path ?? []).map((p) => `.${String(p)}`).join("")}: ${i.message}`));
      }
      parsed = r.data;
    }
    return { name: opts.name ?? (typeof def.name === "string" ? def.name : fallbackName), run: def.run.bind(def), params: parsed };
  }
  throw new ConfigError(`custom action ${file} exports no action`, [`${opts.where}: the module's default export must be a function (params, ctx) => output, or an object with a run function`]);
}

/** A .ts module: transpiled by the "typescript" package next to it, imported, removed. */
async function importTs(file: string): Promise<{ default?: unknown }> {
  let ts: typeof import("typescript");
  try {
    ts = (await import("typescript")).default;
  } catch {
    throw new ConfigError(`cannot load ${file}: a TypeScript action needs the "typescript" package`, [], "install it next to kubecano, or write the action as .mjs");
  }
  const { readFile } = await import("node:fs/promises");
  const out = ts.transpileModule(await readFile(file, "utf8"), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 }, fileName: file });
  const tmp = `${file}.${process.pid}.${Date.now()}.mjs`;
  await writeFile(tmp, out.outputText);
  try {
    return (await import(pathToFileURL(tmp).href)) as { default?: unknown };
  } finally {
    await rm(tmp, { force: true });
  }
}
