import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main, type Io } from "../../src/cli.js";
import { VERSION } from "../../src/version.js";

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let dir: string;
let cwd: string;
const savedEnv: Record<string, string | undefined> = {};
// Options commander reads from process.env itself (Option.env), not from io.env.
const ENV_KEYS = ["KUBECANO_CONFIG", "KUBECANO_LOG_LEVEL", "KUBECANO_LOG_FORMAT", "NO_COLOR", "FORCE_COLOR"];

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kubecano-cli-"));
  cwd = process.cwd();
  // Commands search the current directory for a config: an empty one here.
  process.chdir(dir);
  for (const k of ENV_KEYS) {
    savedEnv[k] = process.env[k];
    delete process.env[k];
  }
});

afterEach(async () => {
  process.chdir(cwd);
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const stdout = new Sink();
  const stderr = new Sink();
  const io: Io = { stdout, stderr, env };
  const code = await main(["node", "kubecano", ...args], io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function write(name: string, content: string): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, content);
  return p;
}

describe("argument parsing", () => {
  it.each<[string, string[], number, RegExp, RegExp | undefined]>([
    ["--version", ["--version"], 0, new RegExp(`^${VERSION.replace(/\./g, "\\.")}\\n$`), undefined],
    ["-V", ["-V"], 0, new RegExp(`^${VERSION.replace(/\./g, "\\.")}\\n$`), undefined],
    ["--help", ["--help"], 0, /^Usage: kubecano \[options\] \[command\][\s\S]*listen[\s\S]*test-destination[\s\S]*Examples:[\s\S]*Exit codes:/, undefined],
    ["-h", ["-h"], 0, /^Usage: kubecano/, undefined],
    ["listen --help", ["listen", "--help"], 0, /^Usage: kubecano listen \[options\][\s\S]*--port <port>[\s\S]*Endpoints:/, undefined],
    ["help config", ["help", "config"], 0, /^Usage: kubecano config[\s\S]*validate[\s\S]*print[\s\S]*schema/, undefined],
    ["config print --help", ["config", "print", "--help"], 0, /--json/, undefined],
  ])("%s", async (_name, args, code, stdout, stderr) => {
    const r = await run(args);
    expect(r.code).toBe(code);
    expect(r.stdout).toMatch(stdout);
    if (stderr !== undefined) expect(r.stderr).toMatch(stderr);
    else expect(r.stderr).toBe("");
  });

  it.each<[string, string[], RegExp]>([
    ["an unknown command, with a suggestion", ["lisen"], /^error: unknown command 'lisen'\n\(Did you mean listen\?\)\n$/],
    ["an unknown config subcommand, with a suggestion", ["config", "valdate"], /unknown command 'valdate'[\s\S]*Did you mean validate\?/],
    ["an unknown option", ["--bogus"], /^error: unknown option '--bogus'\n$/],
    ["an unknown option of a command, with a suggestion", ["listen", "--prot", "8080"], /^error: unknown option '--prot'\n\(Did you mean --port\?\)\n$/],
    ["a port that is not a number", ["listen", "--port", "abc"], /^error: option '--port <port>' argument 'abc' is invalid\. expected a port number between 0 and 65535\n$/],
    ["a port out of range", ["listen", "--port", "70000"], /argument '70000' is invalid\. expected a port number between 0 and 65535/],
    ["a negative port", ["listen", "--port", "-1"], /argument '-1' is invalid/],
    ["a missing option argument", ["listen", "--port"], /^error: option '--port <port>' argument missing\n$/],
    ["a bad log level", ["--log-level", "loud", "config", "schema"], /argument 'loud' is invalid\. Allowed choices are trace, debug, info, warn, error, fatal, silent/],
    ["a bad log format", ["config", "schema", "--log-format", "xml"], /argument 'xml' is invalid\. Allowed choices are json, pretty/],
    ["an extra argument", ["config", "schema", "extra"], /too many arguments/],
  ])("exits 2 for %s", async (_name, args, stderr) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(stderr);
    expect(r.stdout).toBe("");
  });

  it("exits 2 and shows help on stderr when no command is given", async () => {
    for (const args of [[], ["config"]]) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/^Usage: kubecano/);
      expect(r.stdout).toBe("");
    }
  });
});

describe("config commands", () => {
  it("config schema prints the JSON Schema", async () => {
    const r = await run(["config", "schema"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { title: string; properties: Record<string, unknown> };
    expect(schema.title).toBe("kubecano configuration");
    expect(schema.properties).toHaveProperty("destinations");
    expect(r.stderr).toBe("");
  });

  it("config validate: 0 for a valid file, 1 listing the problems of a bad one", async () => {
    const good = await write("good.yaml", "destinations:\n  - { name: terminal, type: console }\n");
    const ok = await run(["config", "validate", "--config", good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(`✔ config is valid: ${good}\n  destinations: terminal (console)\n`);

    const bad = await write("bad.yaml", "clusterName: a\nserver:\n  prot: 80\ndestinations:\n  - { name: x, type: teams }\n");
    const r = await run(["config", "validate", "--config", bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const lines = r.stderr.split("\n");
    // Files under the current directory are shown relative to it.
    expect(lines[0]).toBe("✖ invalid config in bad.yaml");
    expect(r.stderr).toContain('  - bad.yaml:3: server.prot: unknown key "prot"');
    expect(r.stderr).toMatch(/destinations\[0\](\.type)?: unknown destination type: use one of console, slack/);
    expect(r.stderr).toMatch(/\n {2}hint: /);
  });

  it("config validate: 1 for a missing --config file, naming it", async () => {
    const r = await run(["config", "validate", "-c", "nope.yaml"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`config file not found: ${path.join(dir, "nope.yaml")}`);
  });

  it("config validate finds the config through KUBECANO_CONFIG in the environment", async () => {
    const p = await write("env.yaml", "clusterName: from-env\n");
    const r = await run(["config", "validate"], { KUBECANO_CONFIG: p });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(p);
  });

  it("config print on the embedded default", async () => {
    const r = await run(["config", "print"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# resolved from embedded default/);
    expect(r.stdout).toMatch(/^destinations:\n {2}- name: console\n {4}type: console\n/m);
    expect(r.stdout).toMatch(/^ {2}attemptTimeout: 30s$/m);
    const j = await run(["config", "print", "--json"]);
    const config = JSON.parse(j.stdout) as { clusterName: string; server: { port: number }; delivery: { retry: { maxAge: string } }; destinations: unknown[] };
    expect(config.clusterName).toBe("default");
    expect(config.server.port).toBe(8080);
    expect(config.delivery.retry.maxAge).toBe("1d");
    expect(config.destinations).toEqual([{ name: "console", type: "console", params: { format: "text", color: "auto", output: "stdout" } }]);
  });

  it("config print finds a config in the current directory and redacts secrets", async () => {
    await write("kubecano.config.yaml", 'clusterName: here\ndestinations:\n  - { name: s, type: slack, params: { token: "${SLACK_TOKEN}", channel: C1 } }\n');
    const r = await run(["config", "print", "--json"], { SLACK_TOKEN: "xoxb-very-secret-token" });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("xoxb-very-secret-token");
    const config = JSON.parse(r.stdout) as { clusterName: string; destinations: { params: Record<string, unknown> }[] };
    expect(config.clusterName).toBe("here");
    expect(config.destinations[0]!.params["token"]).toBe("[REDACTED]");
  });

  it("config print with a bad config exits 2 with the problems on stderr", async () => {
    await write("bad.yaml", "server: { port: x }\n");
    const r = await run(["config", "print", "-c", "bad.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("kubecano: invalid config in bad.yaml\n  - bad.yaml:1: server.port: expected number, received string\n  hint: ");
  });
});

describe("test-destination", () => {
  it("exits 2 for an unknown destination, listing the configured names", async () => {
    await write("kubecano.config.yaml", "destinations:\n  - { name: terminal, type: console }\n  - { name: errors, type: console, params: { output: stderr } }\n");
    const r = await run(["test-destination", "nope", "terminal", "other"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("kubecano: unknown destinations: nope, other\n  hint: configured destinations: terminal, errors\n");
    expect(r.stdout).toBe("");
  });

  it("sends the test Issue to a console destination and reports success", async () => {
    await write("kubecano.config.yaml", "destinations:\n  - { name: terminal, type: console, params: { format: json } }\n");
    const r = await run(["test-destination", "--json"]);
    expect(r.code).toBe(0);
    // The console destination printed the Issue (NDJSON) before the report.
    const [issueLine, ...rest] = r.stdout.split("\n");
    expect(JSON.parse(issueLine!)).toMatchObject({ title: "kubecano test notification: please ignore", severity: "INFO" });
    const report = JSON.parse(rest.join("\n")) as { ok: boolean; results: { destination: string; ok: boolean }[] };
    expect(report.ok).toBe(true);
    expect(report.results.map((x) => [x.destination, x.ok])).toEqual([["terminal", true]]);
  });
});
