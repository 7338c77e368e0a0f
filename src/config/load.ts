import { randomUUID } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { cosmiconfig, type Loader } from "cosmiconfig";
import { LineCounter, parseDocument, isNode } from "yaml";
import type { z } from "zod";
import { ConfigError, errorMessage } from "../errors.js";
import { DESTINATION_TYPES } from "../destinations/registry.js";
import { formatPath, parseJson } from "../sources/alertmanager/parse.js";
import { interpolateEnv, isPlainObject } from "./interpolate.js";
import { MODULE_NAME, SEARCH_PLACES } from "./places.js";
import { configSchema, type Config } from "./schema.js";

export { MODULE_NAME, SEARCH_PLACES };

export interface LoadedConfig {
  readonly config: Config;
  /** Absolute path of the file, or undefined when running on the embedded default. */
  readonly filepath: string | undefined;
  /** Secret values found in the config; scrubbed from every log line and error. */
  readonly secrets: readonly string[];
}

/** The config file's directory (undefined on the embedded default): relative paths in the config are resolved against it. */
export function configDirOf(loaded: Pick<LoadedConfig, "filepath">): string | undefined {
  return loaded.filepath !== undefined ? path.dirname(loaded.filepath) : undefined;
}

export interface LoadOptions {
  /** --config FILE; wins over KUBECANO_CONFIG and the search. */
  readonly configPath?: string | undefined;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Finds, reads, interpolates and validates the config. Throws ConfigError
 * whose problems each read "file:line: key.path: what is wrong".
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.configPath ?? nonEmpty(env["KUBECANO_CONFIG"]);
  const explorer = cosmiconfig(MODULE_NAME, {
    searchPlaces: [...SEARCH_PLACES],
    loaders: { ".yaml": loadYaml, ".yml": loadYaml, ".json": loadJson, noExt: loadYaml, ".js": loadJs, ".mjs": loadJs, ".cjs": loadJs, ".ts": loadTs },
    cache: false,
  });

  let raw: unknown;
  let filepath: string | undefined;
  if (explicit !== undefined) {
    filepath = path.resolve(cwd, explicit);
    try {
      await readFile(filepath, { flag: "r" }).then(() => undefined);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ConfigError(
        code === "ENOENT" ? `config file not found: ${filepath}` : `cannot read config file ${filepath}: ${code ?? String(e)}`,
        [],
        code === "ENOENT" ? "check the path given to --config (or KUBECANO_CONFIG)" : undefined,
      );
    }
    const r = await runLoader(() => explorer.load(filepath!), filepath);
    raw = r === null || r.isEmpty === true ? {} : r.config;
  } else {
    const r = await runLoader(() => explorer.search(cwd), cwd);
    if (r !== null) {
      filepath = r.filepath;
      raw = r.isEmpty === true ? {} : r.config;
    } else {
      raw = {};
    }
  }

  if (typeof raw === "function") raw = await (raw as () => unknown)();
  if (!isPlainObject(raw)) {
    throw new ConfigError(`invalid config in ${display(filepath)}`, [`${display(filepath)}: the top level must be a mapping (an object), got ${describe(raw)}`]);
  }
  return validateConfig(raw, filepath, env);
}

/** Interpolation and schema validation of an already parsed config object. */
export async function validateConfig(raw: Record<string, unknown>, filepath: string | undefined, env: NodeJS.ProcessEnv): Promise<LoadedConfig> {
  const where = display(filepath);
  const locate = await makeLocator(filepath);
  let interpolated: ReturnType<typeof interpolateEnv>;
  try {
    interpolated = interpolateEnv(raw, env);
  } catch (e) {
    // A YAML alias inside its own anchor (a: &a [*a]) or a JS config object that contains itself.
    if (e instanceof RangeError) throw new ConfigError(`invalid config in ${where}`, [`${where}: the config refers to itself or is nested too deeply`]);
    throw e;
  }
  const { value, problems } = interpolated;
  if (problems.length > 0) {
    throw new ConfigError(
      `invalid config in ${where}`,
      problems.map((p) => `${locate(p.path)}: ${p.path}: environment variable ${p.variable} is not set`),
      "export the variable, or write ${NAME:-fallback} to give it a default",
    );
  }
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid config in ${where}`,
      parsed.error.issues.map((i) => formatIssue(i, locate)),
      "`kubecano config schema` prints the JSON Schema of the config for your editor",
    );
  }
  return { config: parsed.data, filepath, secrets: collectSecrets(parsed.data) };
}

function formatIssue(i: z.core.$ZodIssue, locate: (p: string, keys?: readonly PropertyKey[]) => string): string {
  let p = formatPath(i.path);
  let msg = i.message.replace(/^Invalid input: /, "");
  if (i.code === "unrecognized_keys") {
    const keys = i.keys;
    msg = `unknown key${keys.length > 1 ? "s" : ""} ${keys.map((k) => JSON.stringify(k)).join(", ")}`;
    if (keys.length === 1) p = formatPath([...i.path, keys[0]!]);
  } else if (i.code === "invalid_type" && msg.endsWith("received undefined")) {
    msg = `is required (${msg.replace(/, received undefined$/, "")})`;
  }
  return `${locate(p)}: ${p === "" ? "(top level)" : p}: ${msg}`;
}

const CREDENTIAL_KEY = /auth|token|secret|key|pass|cookie|signature|credential|session/i;

/** Every configured secret value, longest first so scrubbing replaces whole values. */
export function collectSecrets(config: Config): string[] {
  const out = new Set<string>();
  const auth = config.server.auth;
  if (auth !== undefined) {
    if ("bearerToken" in auth) out.add(auth.bearerToken);
    else out.add(auth.basic.password);
  }
  for (const d of config.destinations) {
    const params = d.params as Record<string, unknown>;
    for (const key of DESTINATION_TYPES[d.type].secretParams) {
      const v = params[key];
      if (typeof v === "string" && v.length >= 4) out.add(v);
      // A map (the webhook's headers): credential-like entries and long opaque values are scrubbed
      // everywhere; a short plain value ("X-Team: payments") is not, or every line naming the team would be cut.
      if (isPlainObject(v)) {
        for (const [k, x] of Object.entries(v)) if (typeof x === "string" && x.length >= 4 && (CREDENTIAL_KEY.test(k) || x.length >= 16)) out.add(x);
      }
    }
  }
  return [...out].sort((a, b) => b.length - a.length);
}

async function runLoader<T>(fn: () => Promise<T>, where: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ConfigError(`cannot load config: ${firstLine(msg.replace(/^(YAML|JSON|TypeScript) Error in [^\n]*:\n/, ""))}`, [], `in ${where}`);
  }
}

const loadYaml: Loader = (filepath, content) => {
  const lc = new LineCounter();
  const doc = parseDocument(content, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    const pos = lc.linePos(err.pos[0]);
    throw new ConfigError(`invalid YAML in ${filepath}:${pos.line}:${pos.col}: ${firstLine(err.message)}`);
  }
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
};

const loadJson: Loader = (filepath, content) => {
  const r = parseJson(content);
  if (!r.ok) throw new ConfigError(`${r.error.message.replace(/^invalid JSON/, `invalid JSON in ${filepath}`)}`);
  return r.value;
};

/**
 * import() only. cosmiconfig's own JS loader retries a failed import with
 * require(), which on Node >= 20.19 replaces a syntax error in the file with
 * a misleading "not yet fully loaded ... race condition" message.
 */
const loadJs: Loader = (filepath) => importDefault(filepath, filepath);

async function importDefault(file: string, shownAs: string): Promise<unknown> {
  try {
    return ((await import(pathToFileURL(file).href)) as { default?: unknown }).default;
  } catch (e) {
    // import() reports no line for a syntax error; node --check does.
    throw new ConfigError(`cannot load ${shownAs}: ${firstLine(errorMessage(e))}`, [], e instanceof SyntaxError ? `\`node --check ${file}\` shows where` : undefined);
  }
}

const loadTs: Loader = async (filepath, content) => {
  let ts: typeof import("typescript");
  try {
    ts = (await import("typescript")).default;
  } catch {
    throw new ConfigError(`cannot load ${filepath}: a TypeScript config needs the "typescript" package`, [], "install it next to kubecano (npm i typescript), or write the config as YAML or .mjs");
  }
  const out = ts.transpileModule(content, {
    fileName: filepath,
    reportDiagnostics: true,
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
  });
  const d = out.diagnostics?.[0];
  if (d !== undefined) {
    const at = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    throw new ConfigError(`invalid TypeScript in ${filepath}${at !== undefined ? `:${at.line + 1}:${at.character + 1}` : ""}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
  }
  // Next to the original, so that relative imports in the config still resolve.
  const compiled = `${filepath}.${randomUUID()}.mjs`;
  await writeFile(compiled, out.outputText);
  try {
    return await importDefault(compiled, filepath);
  } finally {
    await rm(compiled, { force: true });
  }
};

/**
 * Maps a key path to "file:line" for YAML and JSON files (the line of the
 * deepest key that exists), so an error points at the place to edit.
 */
async function makeLocator(filepath: string | undefined): Promise<(p: string) => string> {
  const where = display(filepath);
  if (filepath === undefined || !/\.(ya?ml|json)$|\/\.kubecanorc$/.test(filepath)) return () => where;
  let content: string;
  try {
    content = await readFile(filepath, "utf8");
  } catch {
    return () => where;
  }
  const lc = new LineCounter();
  const doc = parseDocument(content, { lineCounter: lc });
  return (p: string) => {
    const keys = splitPath(p);
    for (let n = keys.length; n >= 0; n--) {
      const node = doc.getIn(keys.slice(0, n), true);
      if (isNode(node) && node.range) {
        return `${where}:${lc.linePos(node.range[0]).line}`;
      }
    }
    return where;
  };
}

function splitPath(p: string): (string | number)[] {
  const keys: (string | number)[] = [];
  const re = /([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g;
  for (let m = re.exec(p); m !== null; m = re.exec(p)) {
    if (m[1] !== undefined) keys.push(m[1]);
    else if (m[2] !== undefined) keys.push(Number(m[2]));
    else if (m[3] !== undefined) keys.push(JSON.parse(m[3]) as string);
  }
  return keys;
}

function display(filepath: string | undefined): string {
  if (filepath === undefined) return "embedded default config";
  const rel = path.relative(process.cwd(), filepath);
  return rel !== "" && !rel.startsWith("..") ? rel : filepath;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  return `a ${typeof v}`;
}

function firstLine(s: string): string {
  return s.split("\n").find((l) => l.trim() !== "")?.trim() ?? s;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}
