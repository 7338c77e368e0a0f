import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseDuration, formatMs } from "../../src/config/duration.js";
import { collectSecrets, loadConfig, type LoadedConfig } from "../../src/config/load.js";
import { makeScrubber, REDACTED, redactConfig } from "../../src/config/redact.js";
import { configJsonSchema, configSchema } from "../../src/config/schema.js";
import { DESTINATION_TYPE_NAMES } from "../../src/destinations/registry.js";
import { ConfigError } from "../../src/errors.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kubecano-config-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, content: string): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, content);
  return p;
}

/** Loads with the temp dir as cwd and only the given environment. */
function load(opts: { configPath?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LoadedConfig> {
  return loadConfig({ cwd: dir, env: opts.env ?? {}, ...(opts.configPath !== undefined ? { configPath: opts.configPath } : {}) });
}

async function loadError(opts: { configPath?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ConfigError> {
  try {
    await load(opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected loadConfig to fail");
}

/** The message and every problem, as the CLI prints them. */
function allText(e: ConfigError): string {
  return [e.message, ...e.problems, e.hint ?? ""].join("\n");
}

const DEST_YAML = "destinations:\n  - name: from-file\n    type: console\n";
const DEST_OBJ = { destinations: [{ name: "from-file", type: "console" }] };

describe("finding the config", () => {
  it("runs on the embedded default when there is no file", async () => {
    const l = await load();
    expect(l.filepath).toBeUndefined();
    expect(l.secrets).toEqual([]);
    expect(l.config.destinations).toEqual([{ name: "console", type: "console", params: { format: "text", color: "auto", output: "stdout" } }]);
    expect(l.config.clusterName).toBe("default");
  });

  it.each<[string, string]>([
    ["kubecano.config.yaml", DEST_YAML],
    ["kubecano.config.yml", DEST_YAML],
    ["kubecano.config.json", JSON.stringify(DEST_OBJ)],
    ["kubecano.config.js", `module.exports = ${JSON.stringify(DEST_OBJ)};`],
    ["kubecano.config.mjs", `export default ${JSON.stringify(DEST_OBJ)};`],
    ["kubecano.config.ts", `interface C { destinations: { name: string; type: "console" }[] }\nconst c: C = ${JSON.stringify(DEST_OBJ)};\nexport default c;\n`],
    [".kubecanorc", DEST_YAML],
    [".kubecanorc.json", JSON.stringify(DEST_OBJ)],
    ["package.json", JSON.stringify({ name: "x", version: "1.0.0", kubecano: DEST_OBJ })],
  ])("finds %s by search and by explicit path", async (name, content) => {
    const p = await write(name, content);
    const found = await load();
    expect(found.filepath).toBe(p);
    expect(found.config.destinations.map((d) => d.name)).toEqual(["from-file"]);
    const explicit = await load({ configPath: name });
    expect(explicit.filepath).toBe(p);
    expect(explicit.config.destinations.map((d) => d.name)).toEqual(["from-file"]);
  });

  it("reads .kubecanorc written as JSON", async () => {
    await write(".kubecanorc", JSON.stringify(DEST_OBJ));
    expect((await load()).config.destinations[0]!.name).toBe("from-file");
  });

  it("takes a config function exported by a .mjs file", async () => {
    await write("kubecano.config.mjs", `export default async () => (${JSON.stringify(DEST_OBJ)});`);
    expect((await load()).config.destinations[0]!.name).toBe("from-file");
  });

  it("skips a package.json without a kubecano key", async () => {
    await write("package.json", JSON.stringify({ name: "x" }));
    expect((await load()).filepath).toBeUndefined();
    await write("kubecano.config.yaml", DEST_YAML);
    expect((await load()).filepath).toBe(path.join(dir, "kubecano.config.yaml"));
  });

  it("prefers package.json, then kubecano.config.yaml, in the documented order", async () => {
    await write(".kubecanorc", "clusterName: rc\n");
    await write("kubecano.config.yaml", "clusterName: yaml\n");
    expect((await load()).config.clusterName).toBe("yaml");
    await write("package.json", JSON.stringify({ kubecano: { clusterName: "pkg" } }));
    expect((await load()).config.clusterName).toBe("pkg");
  });

  it("takes KUBECANO_CONFIG from the environment, and --config over it", async () => {
    const a = await write("a.yaml", "clusterName: a\n");
    await write("b.yaml", "clusterName: b\n");
    await write("kubecano.config.yaml", "clusterName: searched\n");
    expect((await load({ env: { KUBECANO_CONFIG: a } })).config.clusterName).toBe("a");
    expect((await load({ env: { KUBECANO_CONFIG: "b.yaml" } })).config.clusterName).toBe("b");
    expect((await load({ env: { KUBECANO_CONFIG: a }, configPath: "b.yaml" })).config.clusterName).toBe("b");
    expect((await load({ env: { KUBECANO_CONFIG: "" } })).config.clusterName).toBe("searched");
  });

  it("an explicit path to a missing file is a ConfigError naming the path", async () => {
    const e = await loadError({ configPath: "nope/missing.yaml" });
    expect(e.message).toBe(`config file not found: ${path.join(dir, "nope/missing.yaml")}`);
    expect(e.hint).toMatch(/--config/);
    const viaEnv = await loadError({ env: { KUBECANO_CONFIG: "/definitely/not/here.yaml" } });
    expect(viaEnv.message).toContain("/definitely/not/here.yaml");
  });

  it("an empty file is an empty config: skipped by the search, the defaults when named", async () => {
    const p = await write("kubecano.config.yaml", "");
    expect((await load()).filepath).toBeUndefined();
    const l = await load({ configPath: p });
    expect(l.filepath).toBe(p);
    expect(l.config.destinations).toHaveLength(1);
    await write(".kubecanorc", "clusterName: next\n");
    expect((await load()).config.clusterName).toBe("next");
  });
});

describe("syntax errors", () => {
  it("invalid YAML names file:line:col", async () => {
    const p = await write("kubecano.config.yaml", "clusterName: a\nserver:\n  port: [8080\n");
    const e = await loadError();
    expect(e.message).toMatch(new RegExp(`^invalid YAML in ${escapeRe(p)}:\\d+:\\d+: `));
    expect(e.message).not.toContain("\n");
    const dup = await write("dup.yaml", "clusterName: a\nclusterName: b\n");
    const e2 = await loadError({ configPath: dup });
    expect(e2.message).toMatch(new RegExp(`^invalid YAML in ${escapeRe(dup)}:2:1: .*[Mm]ap keys must be unique`));
  });

  it("invalid JSON names line and column", async () => {
    const p = await write("kubecano.config.json", '{\n  "clusterName": "a",\n  "server": { "port": 80 80 }\n}');
    const e = await loadError();
    expect(e.message).toMatch(new RegExp(`^invalid JSON in ${escapeRe(p)} at line 3 column \\d+: `));
  });

  it.each([
    ["a list", "- a\n- b\n"],
    ["a string", "just text\n"],
    ["a number", "42\n"],
  ])("refuses a top level that is %s", async (what, content) => {
    await write("kubecano.config.yaml", content);
    const e = await loadError();
    expect(e.problems.join("\n")).toContain(`the top level must be a mapping (an object), got ${what}`);
  });

  it("a .mjs config that throws is a ConfigError naming the file, not a crash", async () => {
    const p = await write("kubecano.config.mjs", 'throw new Error("boom in config");\n');
    const e = await loadError();
    expect(e.message).toBe(`cannot load ${p}: boom in config`);
  });

  it("a syntax error in a .mjs config names the file, not a require() race", async () => {
    const p = await write("kubecano.config.mjs", "export default { a: 1,, };\n");
    const e = await loadError();
    expect(e.message.startsWith(`cannot load ${p}: `)).toBe(true);
    expect(e.message).not.toMatch(/race condition|not yet fully loaded|require\(\)/);
    expect(e.message).not.toContain("\n");
  });

  it("a syntax error in a .ts config names file:line:col", async () => {
    const p = await write("kubecano.config.ts", "const x = 1;\nexport default { clusterName: ; };\n");
    const e = await loadError();
    expect(e.message).toBe(`invalid TypeScript in ${p}:2:31: Expression expected.`);
  });

  it("a .ts config that throws names the .ts file, not the compiled one, and leaves no file behind", async () => {
    const p = await write("kubecano.config.ts", 'const fail = (): never => { throw new Error("ts boom"); };\nexport default fail();\n');
    const e = await loadError();
    expect(e.message).toBe(`cannot load ${p}: ts boom`);
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(dir)).toEqual(["kubecano.config.ts"]);
  });

  it("a YAML alias inside its own anchor is a ConfigError, not a stack overflow", async () => {
    const p = await write("kubecano.config.yaml", "clusterName: a\nextra: &loop\n  - *loop\n");
    const e = await loadError();
    expect(e.problems).toEqual([`${p}: the config refers to itself or is nested too deeply`]);
  });

  it("a JS config object that contains itself is a ConfigError", async () => {
    await write("kubecano.config.mjs", "const c = { clusterName: 'a' }; c.self = c; export default c;\n");
    const e = await loadError();
    expect(e.problems.join("\n")).toContain("refers to itself");
  });
});

describe("environment interpolation", () => {
  it("expands ${VAR}, ${VAR:-fallback} and $${literal}", async () => {
    await write(
      "kubecano.config.yaml",
      [
        "clusterName: ${CLUSTER}",
        "destinations:",
        "  - name: slack-${TEAM:-ops}",
        "    type: slack",
        '    params: { token: "${TOKEN}", channel: "#a", username: "$${NOT_A_VAR}" }',
        "  - name: c",
        "    type: console",
        "    params: { format: \"${FMT:-json}\" }",
      ].join("\n"),
    );
    const l = await load({ env: { CLUSTER: "prod-eu", TOKEN: "xoxb-1234-secret", FMT: "" } });
    expect(l.config.clusterName).toBe("prod-eu");
    const [slack, console_] = l.config.destinations;
    expect(slack!.name).toBe("slack-ops");
    expect(slack!.params).toMatchObject({ token: "xoxb-1234-secret", username: "${NOT_A_VAR}" });
    // An empty variable counts as unset: the fallback applies.
    expect(console_!.params).toMatchObject({ format: "json" });
  });

  it("names every missing variable and the key that uses it, with the line", async () => {
    const p = await write(
      "kubecano.config.yaml",
      ["clusterName: ${CLUSTER_NAME}", "destinations:", "  - name: s", "    type: slack", "    params:", "      token: ${SLACK_TOKEN}", '      channel: "#x"', ""].join("\n"),
    );
    const e = await loadError();
    expect(e.problems).toEqual([
      `${p}:1: clusterName: environment variable CLUSTER_NAME is not set`,
      `${p}:6: destinations[0].params.token: environment variable SLACK_TOKEN is not set`,
    ]);
    expect(e.hint).toMatch(/:-fallback/);
  });
});

describe("schema errors", () => {
  it("an unknown key (a typo) names file:line and the key path", async () => {
    const p = await write("kubecano.config.yaml", "clusterName: a\nserver:\n  prot: 8080\n");
    const e = await loadError();
    expect(e.message).toBe(`invalid config in ${p}`);
    expect(e.problems).toEqual([`${p}:3: server.prot: unknown key "prot"`]);
    expect(e.hint).toMatch(/config schema/);
  });

  it("a wrong type says what was expected", async () => {
    const p = await write("kubecano.config.yaml", "server:\n  port: eighty\ndelivery:\n  concurrency: 0\n");
    const e = await loadError();
    expect(e.problems).toContain(`${p}:2: server.port: expected number, received string`);
    expect(e.problems.find((x) => x.startsWith(`${p}:4: delivery.concurrency: `))).toMatch(/>=\s*1/);
  });

  it("an unknown destination type lists the known ones", async () => {
    const p = await write("kubecano.config.yaml", "destinations:\n  - name: x\n    type: teams\n");
    const e = await loadError();
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(new RegExp(`^${escapeRe(p)}:\\d+: destinations\\[0\\](\\.type)?: unknown destination type: use one of ${DESTINATION_TYPE_NAMES.join(", ")}$`));
  });

  it("duplicate destination names are refused", async () => {
    const p = await write("kubecano.config.yaml", "destinations:\n  - { name: a, type: console }\n  - { name: b, type: console }\n  - { name: a, type: console }\n");
    const e = await loadError();
    expect(e.problems).toEqual([`${p}:4: destinations[2].name: duplicate destination name "a" (also destinations[0])`]);
  });

  it("slack needs a token or a webhook URL", async () => {
    await write("kubecano.config.yaml", 'destinations:\n  - name: s\n    type: slack\n    params: { channel: "#a" }\n');
    const e = await loadError();
    expect(e.problems.join("\n")).toMatch(/destinations\[0\]\.params\.token: set token \(a bot token, with channel\) or webhook_url/);
    await write("kubecano.config.yaml", "destinations:\n  - name: s\n    type: slack\n");
    expect((await loadError()).problems.join("\n")).toMatch(/set token .* or webhook_url/);
  });

  it("slack webhook_url must be http(s) and token needs a channel", async () => {
    await write("kubecano.config.yaml", 'destinations:\n  - { name: s, type: slack, params: { webhook_url: "ftp://x" } }\n  - { name: t, type: slack, params: { token: "xoxb-1" } }\n');
    const text = allText(await loadError());
    expect(text).toMatch(/destinations\[0\]\.params\.webhook_url: expected an http\(s\) URL/);
    expect(text).toMatch(/destinations\[1\]\.params\.channel: is required with token/);
  });

  it("a bad duration says how to write one", async () => {
    const p = await write("kubecano.config.yaml", "delivery:\n  retry:\n    maxDelay: 5 minutes\n");
    const e = await loadError();
    expect(e.problems).toEqual([`${p}:3: delivery.retry.maxDelay: invalid duration "5 minutes": use e.g. "500ms", "30s", "5m", "1h" or a number of seconds`]);
  });

  it("lists every problem at once", async () => {
    await write("kubecano.config.yaml", "clusterNam: a\nserver: { port: -1 }\ndestinations: []\n");
    const e = await loadError();
    expect(e.problems.length).toBeGreaterThanOrEqual(3);
    const text = e.problems.join("\n");
    expect(text).toContain('unknown key "clusterNam"');
    expect(text).toContain("server.port");
    expect(text).toContain("configure at least one destination");
  });

  it("JSON configs get line numbers too", async () => {
    const p = await write("kubecano.config.json", '{\n  "server": {\n    "port": "x"\n  }\n}\n');
    const e = await loadError();
    expect(e.problems[0]).toMatch(new RegExp(`^${escapeRe(p)}:3: server\\.port: `));
  });

  it("JS configs name the file without a line", async () => {
    const p = await write("kubecano.config.mjs", "export default { server: { port: 'x' } };\n");
    const e = await loadError();
    expect(e.problems[0]).toMatch(new RegExp(`^${escapeRe(p)}: server\\.port: `));
  });
});

describe("values", () => {
  it("fills defaults", async () => {
    await write("kubecano.config.yaml", "clusterName: a\n");
    const { config } = await load();
    expect(config.server).toMatchObject({ host: "0.0.0.0", port: 8080, maxBodyBytes: 10_485_760 });
    expect(config.server.auth).toBeUndefined();
    expect(config.delivery).toMatchObject({
      maxBacklog: 10_000,
      concurrency: 4,
      attemptTimeout: 30_000,
      retry: { initialDelay: 1_000, maxDelay: 300_000, maxAge: 86_400_000 },
      shutdownGrace: 20_000,
    });
    expect(config.severityMap).toEqual({});
  });

  it("accepts the api_key and slack_channel aliases", async () => {
    await write("kubecano.config.yaml", 'destinations:\n  - name: s\n    type: slack\n    params: { api_key: "xoxb-alias-token", slack_channel: "C0123" }\n');
    const { config, secrets } = await load();
    expect(config.destinations[0]!.params).toMatchObject({ mode: "bot", token: "xoxb-alias-token", channel: "C0123", api_url: "https://slack.com/api/", timeout: 10_000 });
    expect(config.destinations[0]!.params).not.toHaveProperty("api_key");
    expect(secrets).toEqual(["xoxb-alias-token"]);
  });

  it("refuses an alias together with its original", async () => {
    await write("kubecano.config.yaml", 'destinations:\n  - name: s\n    type: slack\n    params: { token: "a", api_key: "b", channel: "x", slack_channel: "y" }\n');
    const text = allText(await loadError());
    expect(text).toContain("set either token or its alias api_key, not both");
    expect(text).toContain("set either channel or its alias slack_channel, not both");
  });

  it("loads the README reference example", async () => {
    await write("kubecano.config.yaml", README_EXAMPLE);
    const { config, secrets } = await load({ env: { KUBECANO_TOKEN: "0123456789abcdef-token", SLACK_BOT_TOKEN: "xoxb-readme-token", SLACK_WEBHOOK_URL: "https://hooks.slack.com/services/T0/B0/readme" } });
    expect(config.clusterName).toBe("prod-eu");
    expect(config.delivery.retry).toEqual({ initialDelay: 1_000, maxDelay: 300_000, maxAge: 86_400_000 });
    expect(config.destinations.map((d) => `${d.name}:${d.type}`)).toEqual(["slack-main:slack", "slack-hook:slack", "terminal:console"]);
    expect(config.severityMap).toEqual({ p1: "HIGH" });
    expect(secrets).toEqual(["https://hooks.slack.com/services/T0/B0/readme", "0123456789abcdef-token", "xoxb-readme-token"]);
  });
});

describe("secrets", () => {
  async function loaded(yaml: string): Promise<LoadedConfig> {
    await write("kubecano.config.yaml", yaml);
    return load();
  }

  it("collects tokens, webhook URLs, the bearer token and the basic password, longest first", async () => {
    const l = await loaded(
      [
        "server:",
        "  auth: { basic: { username: am, password: basic-password-1 } }",
        "destinations:",
        "  - { name: a, type: slack, params: { token: xoxb-token-aaaa, channel: C1 } }",
        "  - { name: b, type: slack, params: { webhook_url: 'https://hooks.slack.com/services/T/B/XYZ' } }",
        "  - { name: c, type: console }",
      ].join("\n"),
    );
    expect(l.secrets).toEqual(["https://hooks.slack.com/services/T/B/XYZ", "basic-password-1", "xoxb-token-aaaa"]);
    expect(collectSecrets(l.config)).toEqual(l.secrets);
    const bearer = await loaded("server:\n  auth: { bearerToken: bearer-token-0123456789 }\n");
    expect(bearer.secrets).toEqual(["bearer-token-0123456789"]);
  });

  it("redactConfig replaces every secret and keeps everything else", async () => {
    const l = await loaded(
      [
        "server:",
        "  auth: { basic: { username: am, password: basic-password-1 } }",
        "destinations:",
        "  - { name: a, type: slack, params: { token: xoxb-token-aaaa, channel: C1 } }",
        "  - { name: b, type: slack, params: { webhook_url: 'https://hooks.slack.com/services/T/B/XYZ' } }",
      ].join("\n"),
    );
    const r = redactConfig(l.config);
    const text = JSON.stringify(r);
    for (const s of l.secrets) expect(text).not.toContain(s);
    expect(r.server.auth).toEqual({ basic: { username: "am", password: REDACTED } });
    expect(r.destinations[0]!.params).toMatchObject({ token: REDACTED, channel: "C1" });
    expect(r.destinations[1]!.params).toMatchObject({ webhook_url: REDACTED });
    // The original is untouched.
    expect(JSON.stringify(l.config)).toContain("xoxb-token-aaaa");
    const bearer = await loaded("server:\n  auth: { bearerToken: bearer-token-0123456789 }\n");
    expect(redactConfig(bearer.config).server.auth).toEqual({ bearerToken: REDACTED });
    const none = await loaded("clusterName: x\n");
    expect(redactConfig(none.config)).toEqual(none.config);
  });

  it("the scrubber replaces secrets in any text", () => {
    const scrub = makeScrubber(["https://hooks.slack.com/services/T/B/XYZ", "xoxb-token-aaaa", "abc"]);
    expect(scrub("POST https://hooks.slack.com/services/T/B/XYZ failed; token xoxb-token-aaaa, again xoxb-token-aaaa")).toBe(
      `POST ${REDACTED} failed; token ${REDACTED}, again ${REDACTED}`,
    );
    // Secrets shorter than 4 characters are ignored: they would redact ordinary words.
    expect(scrub("abc")).toBe("abc");
    expect(makeScrubber([])("nothing xoxb")).toBe("nothing xoxb");
  });

  it("the scrubber replaces a longer secret before a shorter one that is part of it", () => {
    const scrub = makeScrubber(["xoxb-long-secret-value", "secret"]);
    expect(scrub("a xoxb-long-secret-value b secret")).toBe(`a ${REDACTED} b ${REDACTED}`);
  });
});

describe("configJsonSchema", () => {
  const schema = configJsonSchema() as {
    type?: string;
    title?: string;
    $id?: string;
    additionalProperties?: unknown;
    properties: Record<string, Record<string, unknown>>;
  };

  it("is an object schema with every top-level key", () => {
    expect(schema.type).toBe("object");
    expect(schema.title).toBe("kubecano configuration");
    expect(schema.$id).toMatch(/^https:\/\//);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["$schema", "clusterName", "delivery", "destinations", "server", "severityMap"]));
    expect(schema.additionalProperties).toBe(false);
    expect(() => JSON.parse(JSON.stringify(schema))).not.toThrow();
  });

  it("describes destinations as a list with one entry shape per destination type", () => {
    const dest = schema.properties["destinations"]!;
    expect(dest["type"]).toBe("array");
    const items = dest["items"] as Record<string, unknown>;
    const variants = (items["oneOf"] ?? items["anyOf"]) as Record<string, unknown>[];
    expect(Array.isArray(variants)).toBe(true);
    const types = variants.map((v) => ((v["properties"] as Record<string, Record<string, unknown>>)["type"]!)["const"]);
    expect(types.sort()).toEqual([...DESTINATION_TYPE_NAMES].sort());
    for (const v of variants) expect((v["required"] as string[]).sort()).toEqual(["name", "type"]);
  });

  it("describes durations as a string or a number, and server.port as an integer", () => {
    const server = schema.properties["server"]! as { properties: Record<string, Record<string, unknown>> };
    expect(server.properties["port"]!["type"]).toBe("integer");
    expect(server.properties["port"]!["maximum"]).toBe(65535);
    const delivery = schema.properties["delivery"]! as { properties: Record<string, Record<string, unknown>> };
    const timeout = delivery.properties["attemptTimeout"]!;
    const alternatives = (timeout["anyOf"] ?? timeout["oneOf"]) as { type: string }[] | undefined;
    const kinds = alternatives !== undefined ? alternatives.map((t) => t.type) : (timeout["type"] as string[]);
    expect([...kinds].sort()).toEqual(["number", "string"]);
    // A default in ms would read as seconds in a file: input schemas must not show one.
    expect(timeout["default"]).toBeUndefined();
  });

  it("the README example matches the schema's shape", async () => {
    // Structural check without a JSON Schema validator: every key of the
    // example is a property the schema declares, at every level.
    const { parse } = await import("yaml");
    const example = parse(README_EXAMPLE) as Record<string, unknown>;
    const check = (value: unknown, node: Record<string, unknown>, where: string): void => {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return;
      const props = node["properties"] as Record<string, Record<string, unknown>> | undefined;
      if (props === undefined) return;
      for (const [k, v] of Object.entries(value)) {
        expect(Object.keys(props), `${where}.${k}`).toContain(k);
        check(v, props[k]!, `${where}.${k}`);
      }
    };
    check(example, schema as unknown as Record<string, unknown>, "(top)");
    // And the config schema itself accepts it (with its ${VARS} filled in).
    const filled = JSON.parse(JSON.stringify(example).replace(/\$\{[A-Z_]+\}/g, "https://x.example/0123456789abcdef")) as unknown;
    expect(configSchema.safeParse(filled).success).toBe(true);
  });
});

describe("parseDuration", () => {
  it.each<[string | number, number | undefined]>([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
    ["1m30s500ms", 90_500],
    ["1.5s", 1_500],
    ["10", 10_000],
    ["0.25", 250],
    [" 30s ", 30_000],
    [0, 0],
    [2.5, 2_500],
    ["", undefined],
    ["s", undefined],
    ["10x", undefined],
    ["5 minutes", undefined],
    ["-5s", undefined],
    ["1h 30m", undefined],
    ["30S", undefined],
    [-1, undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
  ])("%j → %s", (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it("formatMs prints what parseDuration reads back", () => {
    for (const ms of [0, 1, 500, 1_000, 1_500, 60_000, 90_000, 3_600_000, 86_400_000, 172_800_000]) {
      expect(parseDuration(formatMs(ms))).toBe(ms);
    }
  });
});

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The reference config from README.md ("Configuration" → "Reference"). */
const README_EXAMPLE = `clusterName: prod-eu            # shown on every Issue (default "default")
server:
  host: 0.0.0.0                 # --host
  port: 8080                    # --port
  maxBodyBytes: 10485760        # larger webhook bodies get 413
  auth:                         # optional; protects /api/*, not health or metrics
    bearerToken: \${KUBECANO_TOKEN}          # ≥ 16 characters
    # or: basic: { username: alertmanager, password: \${KUBECANO_PASSWORD} }
delivery:
  maxBacklog: 10000             # pending deliveries past which webhooks get 503
  concurrency: 4                # concurrent sends per destination
  attemptTimeout: 30s           # upper bound of one send
  retry:
    initialDelay: 1s            # exponential backoff with jitter ...
    maxDelay: 5m                # ... capped here
    maxAge: 24h                 # then the delivery is given up
  shutdownGrace: 20s            # SIGTERM waits this long for in-flight deliveries
severityMap:                    # extra Alertmanager severity label values
  p1: HIGH
destinations:
  - name: slack-main
    type: slack
    params: { token: "\${SLACK_BOT_TOKEN}", channel: "#alerts", username: kubecano, api_url: "https://slack.com/api/" }
  - name: slack-hook
    type: slack
    params: { webhook_url: "\${SLACK_WEBHOOK_URL}" }
  - { name: terminal, type: console }
`;
