/**
 * A tiny JSON Schema (2020-12) validator for the subset kubecano's published
 * schemas use: type, const, enum, required, properties, additionalProperties,
 * items, oneOf, minLength, minimum, format "date-time", and local $refs
 * ("#/$defs/..."). A keyword outside this subset throws, so a schema cannot
 * quietly use something this validator ignores.
 *
 * `documented: true` adds one check the schema itself does not make (it stays
 * open for additive changes): every key of an object whose schema lists
 * `properties` must be one of them, i.e. everything sent is documented.
 */

type Schema = boolean | { readonly [k: string]: unknown };

const ANNOTATIONS = new Set(["$schema", "$id", "title", "description", "$defs"]);
const KEYWORDS = new Set(["$ref", "type", "const", "enum", "required", "properties", "additionalProperties", "items", "oneOf", "minLength", "minimum", "format"]);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export interface ValidateOptions {
  readonly documented?: boolean;
}

/** Problems as "/json/pointer: what is wrong"; empty when `value` is valid. */
export function validateJsonSchema(root: Schema, value: unknown, opts: ValidateOptions = {}): string[] {
  const errors: string[] = [];
  check(root, value, "", errors);
  return errors;

  function resolve(ref: string): Schema {
    if (!ref.startsWith("#/")) throw new Error(`json-schema: only local refs are supported, got ${ref}`);
    let node: unknown = root;
    for (const part of ref.slice(2).split("/")) node = (node as Record<string, unknown>)[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    if (node === undefined) throw new Error(`json-schema: unresolved ref ${ref}`);
    return node as Schema;
  }

  function check(schema: Schema, v: unknown, at: string, out: string[]): void {
    if (schema === true) return;
    if (schema === false) return void out.push(`${at || "/"}: nothing is allowed here`);
    for (const k of Object.keys(schema)) if (!ANNOTATIONS.has(k) && !KEYWORDS.has(k)) throw new Error(`json-schema: unsupported keyword ${k} at ${at || "/"}`);
    const where = at || "/";
    if (typeof schema["$ref"] === "string") check(resolve(schema["$ref"]), v, at, out);
    if (schema["type"] !== undefined) {
      const types = Array.isArray(schema["type"]) ? (schema["type"] as string[]) : [schema["type"] as string];
      if (!types.some((t) => isType(v, t))) return void out.push(`${where}: expected ${types.join(" or ")}, got ${typeOf(v)}`);
    }
    if ("const" in schema && !deepEqual(v, schema["const"])) out.push(`${where}: expected ${JSON.stringify(schema["const"])}`);
    if (Array.isArray(schema["enum"]) && !schema["enum"].some((e) => deepEqual(v, e))) out.push(`${where}: ${JSON.stringify(v)} is not one of ${JSON.stringify(schema["enum"])}`);
    if (typeof v === "string") {
      if (typeof schema["minLength"] === "number" && [...v].length < schema["minLength"]) out.push(`${where}: shorter than ${schema["minLength"]}`);
      if (schema["format"] === "date-time" && !RFC3339.test(v)) out.push(`${where}: ${JSON.stringify(v)} is not an RFC 3339 date-time`);
    }
    if (typeof v === "number" && typeof schema["minimum"] === "number" && v < schema["minimum"]) out.push(`${where}: less than ${schema["minimum"]}`);
    if (Array.isArray(v) && schema["items"] !== undefined) v.forEach((item, i) => check(schema["items"] as Schema, item, `${at}/${i}`, out));
    if (isObject(v)) {
      for (const r of (schema["required"] as string[] | undefined) ?? []) if (!(r in v)) out.push(`${where}: missing required key ${r}`);
      const props = schema["properties"] as Record<string, Schema> | undefined;
      const additional = schema["additionalProperties"] as Schema | undefined;
      for (const [k, item] of Object.entries(v)) {
        const p = `${at}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`;
        if (props !== undefined && k in props) check(props[k]!, item, p, out);
        else if (additional !== undefined) check(additional, item, p, out);
        else if (props !== undefined && opts.documented === true) out.push(`${p}: key ${k} is not documented in the schema`);
      }
    }
    if (Array.isArray(schema["oneOf"])) {
      const results = (schema["oneOf"] as Schema[]).map((s) => {
        const e: string[] = [];
        check(s, v, at, e);
        return e;
      });
      const passing = results.filter((e) => e.length === 0).length;
      if (passing !== 1) {
        const closest = results.reduce((a, b) => (b.length < a.length ? b : a), results[0] ?? []);
        out.push(`${where}: matches ${passing} of the oneOf alternatives, not exactly one${passing === 0 ? ` (closest: ${closest.join("; ")})` : ""}`);
      }
    }
  }
}

function isType(v: unknown, t: string): boolean {
  switch (t) {
    case "null":
      return v === null;
    case "string":
      return typeof v === "string";
    case "boolean":
      return typeof v === "boolean";
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "integer":
      return typeof v === "number" && Number.isInteger(v);
    case "array":
      return Array.isArray(v);
    case "object":
      return isObject(v);
    default:
      throw new Error(`json-schema: unknown type ${t}`);
  }
}

function typeOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
