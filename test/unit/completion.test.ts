/**
 * Shell completion: the scripts are generated from the commander program,
 * completions/ holds the copies users and packagers take (this test fails
 * when they drift: `npx vitest run test/unit/completion.test.ts -u` rewrites
 * them), and real shells complete with them: bash always, zsh and fish
 * where they are installed.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram, main, type Io } from "../../src/cli.js";
import { completionScript, describeProgram, destinationNames, SHELLS, type CommandSpec } from "../../src/commands/completion.js";
import { BIN, REPO_ROOT, assertBuilt } from "../helpers/cli.js";

const run = promisify(execFile);

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

function io(env: NodeJS.ProcessEnv = {}): Io & { stdout: Sink; stderr: Sink } {
  return { stdout: new Sink(), stderr: new Sink(), env };
}

const program = () => buildProgram(io(), () => undefined);
const FILES = { bash: "kubecano.bash", zsh: "_kubecano", fish: "kubecano.fish" } as const;

function find(spec: CommandSpec, ...p: string[]): CommandSpec {
  const c = p.reduce<CommandSpec | undefined>((at, name) => at?.commands.find((x) => x.path.at(-1) === name), spec);
  if (c === undefined) throw new Error(`no command ${p.join(" ")}`);
  return c;
}

describe("what completion reads from the program", () => {
  const spec = describeProgram(program());

  it("has every visible command, nested, and no hidden option", () => {
    expect(spec.commands.map((c) => c.path.join(" "))).toEqual(expect.arrayContaining(["listen", "replay", "test-destination", "deliveries", "config", "completion"]));
    expect(find(spec, "deliveries").commands.map((c) => c.path.join(" "))).toEqual(["deliveries retry", "deliveries drop"]);
    expect(find(spec, "config").commands.map((c) => c.path.at(-1))).toEqual(expect.arrayContaining(["validate", "print", "schema"]));
    expect(find(spec, "completion").options.flatMap((o) => o.flags)).not.toContain("--destinations");
  });

  it("knows what each value is: files, directories, choices, destination names", () => {
    const listen = find(spec, "listen");
    const value = (c: CommandSpec, flag: string) => c.options.find((o) => o.flags.includes(flag))?.value;
    expect(value(listen, "--tls-cert")).toEqual({ kind: "file" });
    expect(value(listen, "--state-dir")).toEqual({ kind: "dir" });
    expect(value(listen, "--host")).toEqual({ kind: "text" });
    expect(value(listen, "--ephemeral")).toBeUndefined();
    expect(value(spec, "--config")).toEqual({ kind: "file" });
    expect(value(spec, "--log-format")).toEqual({ kind: "choices", values: ["json", "pretty"] });
    expect(value(find(spec, "deliveries"), "--state")).toEqual({ kind: "choices", values: ["pending", "dead", "all", "done"] });
    expect(find(spec, "test-destination").args).toEqual({ kind: "destinations" });
    expect(find(spec, "replay").args).toEqual({ kind: "file" });
    expect(find(spec, "completion").args).toEqual({ kind: "choices", values: ["bash", "zsh", "fish"] });
  });
});

describe("completions/ copies", () => {
  for (const shell of SHELLS) {
    it(`completions/${FILES[shell]} is what \`kubecano completion ${shell}\` prints`, async () => {
      const out = io();
      expect(await main(["node", "kubecano", "completion", shell], out)).toBe(0);
      expect(out.stdout.text).toBe(completionScript(shell, program()));
      await expect(out.stdout.text).toMatchFileSnapshot(path.join(REPO_ROOT, "completions", FILES[shell]));
    });
  }

  it("an unknown shell or none is a usage error with the choices", async () => {
    const bad = io();
    expect(await main(["node", "kubecano", "completion", "tcsh"], bad)).toBe(2);
    expect(bad.stderr.text).toContain("bash, zsh, fish");
    const none = io();
    expect(await main(["node", "kubecano", "completion"], none)).toBe(2);
    expect(none.stderr.text).toContain("name a shell: kubecano completion bash, zsh or fish");
  });
});

describe("destination names for completion", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubecano-completion-"));
    await writeFile(
      path.join(dir, "kubecano.config.yaml"),
      `destinations:
  - name: slack-main
    type: slack
    params: { token: "\${SLACK_TOKEN_NOT_SET}", channel: "#alerts" }
  - { name: terminal, type: console }
`,
    );
    await writeFile(path.join(dir, "other.yaml"), "destinations:\n  - { name: pager, type: console }\n");
    await writeFile(path.join(dir, "broken.yaml"), "destinations: [\n");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("come from the config found in the directory, without its secrets being set", async () => {
    expect(await destinationNames({ env: {}, cwd: dir })).toEqual(["slack-main", "terminal"]);
  });
  it("--config and KUBECANO_CONFIG name another file", async () => {
    expect(await destinationNames({ config: "other.yaml", env: {}, cwd: dir })).toEqual(["pager"]);
    expect(await destinationNames({ env: { KUBECANO_CONFIG: path.join(dir, "other.yaml") }, cwd: dir })).toEqual(["pager"]);
  });
  it("the embedded default is the console; a missing or broken config completes to nothing", async () => {
    const empty = await mkdtemp(path.join(tmpdir(), "kubecano-completion-empty-"));
    try {
      expect(await destinationNames({ env: {}, cwd: empty })).toEqual(["console"]);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
    expect(await destinationNames({ config: "nope.yaml", env: {}, cwd: dir })).toEqual([]);
    expect(await destinationNames({ config: "broken.yaml", env: {}, cwd: dir })).toEqual([]);
  });
});

/**
 * Real shells, sourcing the generated script and asking it to complete a
 * line. The last word is the one being completed ("" for a fresh word).
 * `kubecano` runs the built CLI (for destination names).
 */
describe("completing in a real shell", () => {
  let dir: string;
  let scripts: Record<(typeof SHELLS)[number], string>;
  beforeAll(async () => {
    assertBuilt();
    dir = await mkdtemp(path.join(tmpdir(), "kubecano-shell-"));
    await writeFile(path.join(dir, "kubecano.config.yaml"), "destinations:\n  - { name: slack-main, type: console }\n  - { name: pagerduty-oncall, type: console }\n");
    await writeFile(path.join(dir, "team.yaml"), "destinations:\n  - { name: team-hook, type: console }\n");
    await writeFile(path.join(dir, "alert.json"), "{}");
    scripts = { bash: "", zsh: "", fish: "" };
    for (const shell of SHELLS) {
      scripts[shell] = path.join(dir, FILES[shell]);
      await writeFile(scripts[shell], completionScript(shell, program()));
    }
    // `kubecano` on PATH is the built CLI.
    await writeFile(path.join(dir, "kubecano"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const env = (): NodeJS.ProcessEnv => ({ PATH: `${dir}:${process.env["PATH"] ?? ""}`, HOME: dir, KUBECANO_CONFIG: undefined });

  async function bash(...words: string[]): Promise<string[]> {
    const script = `source ${JSON.stringify(scripts.bash)}
COMP_WORDS=(kubecano "$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); COMPREPLY=()
_kubecano
printf '%s\\n' "\${COMPREPLY[@]}"`;
    const { stdout } = await run("bash", ["--norc", "--noprofile", "-c", script, "bash", ...words], { cwd: dir, env: env() });
    return stdout.split("\n").filter((l) => l !== "");
  }

  const table: [string[], string[]][] = [
    [[""], ["listen", "watch", "replay", "test-destination", "tui", "deliveries", "config", "completion", "help"]],
    [["de"], ["deliveries"]],
    [["deliveries", ""], ["retry", "drop"]],
    [["deliveries", "--state", ""], ["pending", "dead", "all", "done"]],
    [["deliveries", "--state", "d"], ["dead", "done"]],
    [["--log-level", "w"], ["warn"]],
    [["listen", "--tls"], ["--tls-cert", "--tls-key"]],
    [["listen", "--log-f"], ["--log-format"]],
    [["config", "print", "--"], ["--json", "--help", "--config", "--log-level", "--log-format", "--no-color"]],
    [["-c", "team.yaml", "config", ""], ["validate", "print", "schema", "help"]],
    [["replay", "--output", "=", "j"], ["json"]],
    [["replay", "al"], ["alert.json"]],
    [["listen", "--state-dir", "al"], []],
    [["listen", "--tls-cert", "team"], ["team.yaml"]],
    [["completion", ""], ["bash", "zsh", "fish"]],
  ];
  for (const [words, expected] of table) {
    it(`bash: kubecano ${words.join(" ")}<TAB> → ${expected.join(" ") || "(nothing)"}`, async () => {
      expect(await bash(...words)).toEqual(expected);
    });
  }

  it("bash: destination names come from the config in use, --config on the line included", async () => {
    expect(await bash("test-destination", "")).toEqual(["slack-main", "pagerduty-oncall"]);
    expect(await bash("test-destination", "slack-main", "p")).toEqual(["pagerduty-oncall"]);
    expect(await bash("--config", "team.yaml", "test-destination", "")).toEqual(["team-hook"]);
    expect(await bash("test-destination", "--config=team.yaml", "")).toEqual(["team-hook"]);
    expect(await bash("-c", "missing.yaml", "test-destination", "")).toEqual([]);
  });

  const has = (shell: string): boolean => ["/usr/bin", "/bin", "/usr/local/bin"].some((d) => existsSync(path.join(d, shell)));

  it.skipIf(!has("zsh"))("zsh: the script parses, and completes commands, choices and destination names", async () => {
    await run("zsh", ["-n", scripts.zsh]);
    // compadd and _describe only work inside completion widgets: stand-ins record what would be offered.
    const zsh = async (...words: string[]): Promise<string[]> => {
      const script = `compdef() { :; }
offered=()
compadd() { local a; for a in "$@"; do [[ $a == -a ]] && continue; offered+=(\${(P)a}); done; }
_describe() { local arr=$4; offered+=(\${\${(P)arr}%%:*}); }
_files() { offered+=(FILES "$@"); }
compset() { :; }
words=(kubecano "$@"); CURRENT=\${#words}
source ${JSON.stringify(scripts.zsh)}
_kubecano
print -l -- $offered`;
      const { stdout } = await run("zsh", ["-f", "-c", script, "zsh", ...words], { cwd: dir, env: env() });
      return stdout.split("\n").filter((l) => l !== "");
    };
    expect(await zsh("")).toEqual(["listen", "watch", "replay", "test-destination", "tui", "deliveries", "config", "completion", "help"]);
    expect(await zsh("deliveries", "--state", "")).toEqual(["pending", "dead", "all", "done"]);
    expect(await zsh("test-destination", "")).toEqual(["slack-main", "pagerduty-oncall"]);
    expect(await zsh("-c", "team.yaml", "test-destination", "")).toEqual(["team-hook"]);
    expect(await zsh("listen", "--state-dir", "")).toEqual(["FILES", "-/"]);
  });

  it.skipIf(!has("fish"))("fish: the script loads, and completes commands, options, choices and destination names", async () => {
    const fish = async (line: string): Promise<string[]> => {
      const { stdout } = await run("fish", ["--no-config", "-c", `source ${JSON.stringify(scripts.fish)}; complete -C ${JSON.stringify(line)}`], { cwd: dir, env: env() });
      // fish sorts what it offers.
      return stdout.split("\n").filter((l) => l !== "").map((l) => l.split("\t")[0]!).sort();
    };
    expect(await fish("kubecano ")).toEqual(expect.arrayContaining(["listen", "replay", "test-destination", "deliveries", "config", "completion"]));
    expect(await fish("kubecano deliveries ")).toEqual(expect.arrayContaining(["retry", "drop"]));
    expect(await fish("kubecano deliveries --state ")).toEqual(["all", "dead", "done", "pending"]);
    expect(await fish("kubecano listen --tls")).toEqual(["--tls-cert", "--tls-key"]);
    expect(await fish("kubecano test-destination ")).toEqual(expect.arrayContaining(["slack-main", "pagerduty-oncall"]));
    expect(await fish("kubecano -c team.yaml test-destination ")).toEqual(["team-hook"]);
  });
});
