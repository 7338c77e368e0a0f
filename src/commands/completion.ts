import path from "node:path";
import type { Argument, Command, Option } from "commander";
import { cosmiconfig } from "cosmiconfig";
import type { Io } from "../cli.js";
import { MODULE_NAME, SEARCH_PLACES } from "../config/places.js";
import { ExitCode, InputError } from "../errors.js";

/**
 * Shell completion scripts, generated from the commander program itself:
 * commands, options, choices, and what each option or argument takes (a
 * file, a directory, a destination name). Destination names are looked up
 * when completing, by calling `kubecano completion --destinations`, so they
 * follow the config in use (--config on the line, KUBECANO_CONFIG, or the
 * one found in the current directory). completions/ holds the generated
 * copies; a test fails when they drift from the program.
 */

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** How the value of an option or an argument completes. */
export type ValueKind = { readonly kind: "file" | "dir" | "destinations" | "text" } | { readonly kind: "choices"; readonly values: readonly string[] };

export interface OptionSpec {
  /** "-c", "--config" */
  readonly flags: readonly string[];
  readonly description: string;
  /** undefined: a flag without a value. */
  readonly value: ValueKind | undefined;
}

export interface CommandSpec {
  /** [] for the program, ["deliveries", "retry"] for a subcommand. */
  readonly path: readonly string[];
  readonly description: string;
  readonly commands: readonly CommandSpec[];
  /** The command's own options (the program's apply to every command). */
  readonly options: readonly OptionSpec[];
  /** What its positional arguments take; undefined when it has none. */
  readonly args: ValueKind | undefined;
}

/** The program as completion sees it: visible commands and options only. */
export function describeProgram(program: Command): CommandSpec {
  const walk = (cmd: Command, at: readonly string[]): CommandSpec => {
    const help = cmd.createHelp();
    const commands = help.visibleCommands(cmd).map((c) => walk(c, [...at, c.name()]));
    const first = cmd.registeredArguments[0];
    return {
      path: at,
      description: oneLine(cmd.description()),
      commands,
      options: help.visibleOptions(cmd).map(optionSpec),
      args: first !== undefined ? argumentKind(first) : undefined,
    };
  };
  return walk(program, []);
}

function optionSpec(o: Option): OptionSpec {
  const flags = [o.short, o.long].filter((f): f is string => f !== undefined);
  const placeholder = /[<[]([^>\]]+?)(?:\.\.\.)?[>\]]/.exec(o.flags)?.[1];
  // Only a required value is skipped over when reading the line; `[value]` options are flags there.
  const value = o.required && placeholder !== undefined ? kindOf(placeholder, o.description, o.argChoices) : undefined;
  return { flags, description: oneLine(o.description), value };
}

function argumentKind(a: Argument): ValueKind {
  return kindOf(a.name(), a.description, a.argChoices);
}

/** From the value's name and description: `<file>`, `<dir>`, "destination names", choices. */
function kindOf(name: string, description: string, choices: readonly string[] | undefined): ValueKind {
  if (choices !== undefined && choices.length > 0) return { kind: "choices", values: choices };
  if (/destination/i.test(name) || /destination names?/i.test(description)) return { kind: "destinations" };
  if (/^(dir|directory|dirs)$/i.test(name)) return { kind: "dir" };
  if (/^(file|files|inputs?|path|paths)$/i.test(name) || /\bfiles?\b/i.test(description)) return { kind: "file" };
  return { kind: "text" };
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

/** Every command, the program first, depth first in definition order. */
function allCommands(spec: CommandSpec): CommandSpec[] {
  return [spec, ...spec.commands.flatMap(allCommands)];
}

/** The options one may give at `cmd`: its own, then the program's (except --version, which is the program's alone). */
function optionsAt(root: CommandSpec, cmd: CommandSpec): OptionSpec[] {
  if (cmd === root) return [...root.options];
  const own = new Set(cmd.options.flatMap((o) => o.flags));
  return [...cmd.options, ...root.options.filter((o) => !o.flags.includes("--version") && !o.flags.some((f) => own.has(f)))];
}

/** "file", "dir", "destinations", "text" or "choices a b c": the value words the scripts switch on. */
function kindWord(v: ValueKind): string {
  return v.kind === "choices" ? `choices ${v.values.join(" ")}` : v.kind;
}

export function completionScript(shell: Shell, program: Command): string {
  const spec = describeProgram(program);
  const name = program.name();
  switch (shell) {
    case "bash":
      return bashScript(name, spec);
    case "zsh":
      return zshScript(name, spec);
    case "fish":
      return fishScript(name, spec);
  }
}

/** A word quoted for a POSIX-like shell (bash, zsh): single quotes, ' as '\''. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A case pattern for a command path ("" for the program). */
function casePath(cmd: CommandSpec): string {
  return sq(cmd.path.join(" "));
}

/** The shared shell functions (bash and zsh speak the same here): commands, options, values and arguments by command path. */
function tables(root: CommandSpec, fn: string, withDescriptions: boolean): string {
  const cmds = allCommands(root);
  const line = (word: string, description: string): string => sq(withDescriptions ? `${word.replace(/:/g, "\\:")}:${description}` : word);
  const out: string[] = [];
  out.push(`# Subcommands of a command path${withDescriptions ? " (name:description)" : ""}.`);
  out.push(`${fn}_commands() {`, "  case $1 in");
  for (const c of cmds) {
    if (c.commands.length === 0) continue;
    out.push(`    ${casePath(c)}) printf '%s\\n' ${c.commands.map((s) => line(s.path.at(-1)!, s.description)).join(" ")} ;;`);
  }
  out.push("  esac", "}", "");
  out.push(`# Options of a command path${withDescriptions ? " (flag:description)" : ""}.`);
  out.push(`${fn}_options() {`, "  case $1 in");
  for (const c of cmds) {
    const opts = optionsAt(root, c);
    out.push(`    ${casePath(c)}) printf '%s\\n' ${opts.flatMap((o) => o.flags.map((f) => line(f, o.description))).join(" ")} ;;`);
  }
  out.push("  esac", "}", "");
  out.push("# What an option's value is (file, dir, destinations, text, choices ...); nothing for a flag.");
  out.push(`${fn}_value() {`, '  case "$1:$2" in');
  // The program's options apply under every command (`*`); case takes the first match, so they come last.
  const rows = cmds.flatMap((c) =>
    c.options.flatMap((o) => (o.value === undefined ? [] : [{ where: c === root ? "*" : sq(c.path.join(" ")), flags: o.flags, kind: kindWord(o.value) }])),
  );
  for (const r of [...rows.filter((x) => x.where !== "*"), ...rows.filter((x) => x.where === "*")]) {
    out.push(`    ${r.flags.map((f) => `${r.where}:${f}`).join("|")}) echo ${sq(r.kind)} ;;`);
  }
  out.push("  esac", "}", "");
  out.push("# What a command's positional arguments are.");
  out.push(`${fn}_arguments() {`, "  case $1 in");
  for (const c of cmds) if (c.args !== undefined && c.args.kind !== "text") out.push(`    ${casePath(c)}) echo ${sq(kindWord(c.args))} ;;`);
  out.push("  esac", "}");
  return out.join("\n");
}

function bashScript(name: string, root: CommandSpec): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
  return `# bash completion for ${name}
# Generated by \`${name} completion bash\` from the program's commands and options: do not edit.
#
# Install (one of):
#   source <(${name} completion bash)                                          # in ~/.bashrc
#   ${name} completion bash > ~/.local/share/bash-completion/completions/${name}

${tables(root, fn, false)}

# Completes one value: $1 its kind, $2 the word so far, $3 the --config given on the line.
${fn}_complete() {
  local line
  case $1 in
    file | dir)
      compopt -o filenames 2>/dev/null
      while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen "$([[ $1 == dir ]] && echo -d || echo -f)" -- "$2")
      ;;
    destinations)
      while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -W "$("\${COMP_WORDS[0]}" completion --destinations \${3:+--config "$3"} 2>/dev/null)" -- "$2")
      ;;
    choices\\ *)
      while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -W "\${1#choices }" -- "$2")
      ;;
  esac
}

${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd='' config='' word value opt='' line i=1
  COMPREPLY=()
  # The command path so far, skipping options and their values (bash may split --opt=value at '=').
  while ((i < COMP_CWORD)); do
    word=\${COMP_WORDS[i]}
    if [[ $word == -* ]]; then
      if [[ $word == *=* ]]; then
        [[ \${word%%=*} == -c || \${word%%=*} == --config ]] && config=\${word#*=}
      elif [[ -n $(${fn}_value "$cmd" "$word") ]]; then
        [[ \${COMP_WORDS[i + 1]} == = ]] && ((i++))
        ((i++))
        [[ $word == -c || $word == --config ]] && config=\${COMP_WORDS[i]}
      fi
    elif [[ $word != = ]]; then
      while IFS= read -r line; do
        if [[ $line == "$word" ]]; then cmd=\${cmd:+$cmd }$word; break; fi
      done < <(${fn}_commands "$cmd")
    fi
    ((i++))
  done
  config=\${config/#\\~/$HOME}
  # The value of an option: --opt value, --opt=value, or --opt = value as bash splits it.
  if [[ $cur == -*=* ]]; then
    opt=\${cur%%=*}
    cur=\${cur#*=}
  elif ((COMP_CWORD >= 2)) && [[ \${COMP_WORDS[COMP_CWORD - 1]} == = ]]; then
    opt=\${COMP_WORDS[COMP_CWORD - 2]}
  elif ((COMP_CWORD >= 2)) && [[ $cur == = ]]; then
    opt=\${COMP_WORDS[COMP_CWORD - 1]}
    cur=''
  elif ((COMP_CWORD >= 2)); then
    opt=\${COMP_WORDS[COMP_CWORD - 1]}
  fi
  if [[ $opt == -* ]]; then
    value=$(${fn}_value "$cmd" "$opt")
    if [[ -n $value ]]; then
      ${fn}_complete "$value" "$cur" "$config"
      return 0
    fi
  fi
  if [[ $cur == -* ]]; then
    while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -W "$(${fn}_options "$cmd")" -- "$cur")
    return 0
  fi
  value=$(${fn}_commands "$cmd")
  if [[ -n $value ]]; then
    while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -W "$value" -- "$cur")
    return 0
  fi
  value=$(${fn}_arguments "$cmd")
  [[ -n $value ]] && ${fn}_complete "$value" "$cur" "$config"
  return 0
}

complete -F ${fn} ${name}
`;
}

function zshScript(name: string, root: CommandSpec): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
  return `#compdef ${name}
# zsh completion for ${name}
# Generated by \`${name} completion zsh\` from the program's commands and options: do not edit.
#
# Install (one of):
#   ${name} completion zsh > "\${fpath[1]}/_${name}"      # then start a new shell
#   source <(${name} completion zsh)                     # in ~/.zshrc, after compinit

${tables(root, fn, true)}

# Completes one value: $1 its kind, $2 the --config given on the line.
${fn}_complete() {
  local -a values
  case $1 in
    file) _files ;;
    dir) _files -/ ;;
    destinations)
      local -a config
      [[ -n $2 ]] && config=(--config "$2")
      values=(\${(f)"$(\${words[1]} completion --destinations $config 2>/dev/null)"})
      compadd -a values
      ;;
    choices\\ *)
      values=(\${=1#choices })
      compadd -a values
      ;;
  esac
}

${fn}() {
  local cmd='' config='' word value opt='' i=2
  local -a names described
  # The command path so far, skipping options and their values.
  while (( i < CURRENT )); do
    word=\${words[i]}
    if [[ $word == -* ]]; then
      if [[ $word == *=* ]]; then
        [[ \${word%%=*} == (-c|--config) ]] && config=\${word#*=}
      elif [[ -n $(${fn}_value "$cmd" "$word") ]]; then
        (( i++ ))
        [[ $word == (-c|--config) ]] && config=\${words[i]}
      fi
    else
      names=(\${(f)"$(${fn}_commands "$cmd")"})
      names=(\${names%%:*})
      (( \${names[(Ie)$word]} )) && cmd=\${cmd:+$cmd }$word
    fi
    (( i++ ))
  done
  config=\${~config}
  if [[ \${words[CURRENT]} == -*=* ]]; then
    opt=\${words[CURRENT]%%=*}
    compset -P '*='
  elif (( CURRENT > 2 )); then
    opt=\${words[CURRENT-1]}
  fi
  if [[ $opt == -* ]]; then
    value=$(${fn}_value "$cmd" "$opt")
    if [[ -n $value ]]; then
      ${fn}_complete "$value" "$config"
      return
    fi
  fi
  if [[ \${words[CURRENT]} == -* ]]; then
    described=(\${(f)"$(${fn}_options "$cmd")"})
    _describe -t options option described
    return
  fi
  described=(\${(f)"$(${fn}_commands "$cmd")"})
  if (( \${#described} )); then
    _describe -t commands command described
    return
  fi
  value=$(${fn}_arguments "$cmd")
  [[ -n $value ]] && ${fn}_complete "$value" "$config"
}

if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

/** A word quoted for fish: single quotes, with \\ and ' escaped. */
function fq(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function fishScript(name: string, root: CommandSpec): string {
  const fn = `__${name.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const cmds = allCommands(root);
  const out: string[] = [];
  out.push(`# fish completion for ${name}`);
  out.push(`# Generated by \`${name} completion fish\` from the program's commands and options: do not edit.`);
  out.push("#");
  out.push(`# Install: ${name} completion fish > ~/.config/fish/completions/${name}.fish`);
  out.push("");
  out.push("# Subcommands of a command path.");
  out.push(`function ${fn}_commands --argument-names path`, '    switch "$path"');
  for (const c of cmds) {
    if (c.commands.length === 0) continue;
    out.push(`        case ${fq(c.path.join(" "))}`, `            printf '%s\\n' ${c.commands.map((s) => fq(s.path.at(-1)!)).join(" ")}`);
  }
  out.push("    end", "end", "");
  out.push("# Whether an option takes a value (it is skipped when reading the command path).");
  out.push(`function ${fn}_takes_value --argument-names path opt`, '    switch "$path:$opt"');
  const takes: string[] = [];
  for (const c of cmds) for (const o of c.options) if (o.value !== undefined) for (const f of o.flags) takes.push(fq(`${c === root ? "*" : c.path.join(" ")}:${f}`));
  if (takes.length > 0) out.push(`        case ${takes.join(" ")}`, "            return 0");
  out.push("    end", "    return 1", "end", "");
  out.push("# The command path on the line so far, e.g. 'deliveries retry'.");
  out.push(
    `function ${fn}_path`,
    "    set -l words (commandline -opc)",
    "    set -e words[1]",
    "    set -l path ''",
    "    set -l skip 0",
    "    for w in $words",
    "        if test $skip = 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        switch $w",
    "            case '-*=*'",
    "            case '-*'",
    `                ${fn}_takes_value "$path" $w; and set skip 1`,
    "            case '*'",
    `                if contains -- $w (${fn}_commands "$path")`,
    '                    set path (string trim -- "$path $w")',
    "                end",
    "        end",
    "    end",
    '    echo "$path"',
    "end",
    "",
    `function ${fn}_is --argument-names want`,
    `    set -l path (${fn}_path)`,
    '    test "$path" = "$want"',
    "end",
    "",
    "# Destination names from the config in use (--config on the line, KUBECANO_CONFIG, or the one found here).",
    `function ${fn}_destinations`,
    "    set -l words (commandline -opc)",
    "    set -l args",
    "    for i in (seq (count $words))",
    "        switch $words[$i]",
    "            case -c --config",
    "                set -q words[(math $i + 1)]; and set args --config $words[(math $i + 1)]",
    "            case '--config=*'",
    "                set args --config (string replace -- --config= '' $words[$i])",
    "        end",
    "    end",
    "    $words[1] completion --destinations $args 2>/dev/null",
    "end",
    "",
    `complete -c ${name} -f`,
  );
  const valueArgs = (v: ValueKind | undefined): string => {
    if (v === undefined) return "";
    switch (v.kind) {
      case "file":
        return " -r -F";
      case "dir":
        return ` -x -a ${fq("(__fish_complete_directories (commandline -ct) '')")}`;
      case "destinations":
        return ` -x -a ${fq(`(${fn}_destinations)`)}`;
      case "choices":
        return ` -x -a ${fq(v.values.join(" "))}`;
      case "text":
        return " -x";
    }
  };
  const optionLine = (o: OptionSpec, condition: string): string => {
    const flags = o.flags.map((f) => (f.startsWith("--") ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(" ");
    return `complete -c ${name}${condition} ${flags}${valueArgs(o.value)} -d ${fq(o.description)}`;
  };
  for (const c of cmds) {
    const cond = ` -n ${fq(`${fn}_is ${fq(c.path.join(" "))}`)}`;
    out.push("", `# ${c === root ? name : `${name} ${c.path.join(" ")}`}`);
    for (const s of c.commands) out.push(`complete -c ${name}${cond} -a ${fq(s.path.at(-1)!)} -d ${fq(s.description)}`);
    // The program's options are valid everywhere (--version only before a command).
    for (const o of c.options) out.push(optionLine(o, c === root && !o.flags.includes("--version") && !o.flags.includes("--help") ? "" : cond));
    // A positional file is offered as files, without -r (that is for option values).
    if (c.args !== undefined && c.args.kind !== "text") out.push(`complete -c ${name}${cond}${c.args.kind === "file" ? " -F" : valueArgs(c.args)}`);
  }
  return `${out.join("\n")}\n`;
}

/** Destination names of the config in use, without expanding ${VARS} or validating: completion must work without the secrets. */
export async function destinationNames(opts: { config?: string | undefined; env: NodeJS.ProcessEnv; cwd?: string }): Promise<string[]> {
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.config ?? (opts.env["KUBECANO_CONFIG"] !== "" ? opts.env["KUBECANO_CONFIG"] : undefined);
  try {
    const explorer = cosmiconfig(MODULE_NAME, { searchPlaces: [...SEARCH_PLACES], cache: false });
    const found = explicit !== undefined ? await explorer.load(path.resolve(cwd, explicit)) : await explorer.search(cwd);
    if (found === null) return ["console"];
    let raw: unknown = found.config;
    if (typeof raw === "function") raw = await (raw as () => unknown)();
    const list = (raw as { destinations?: unknown } | null)?.destinations;
    if (list === undefined) return ["console"];
    if (!Array.isArray(list)) return [];
    return list.map((d: unknown) => (d as { name?: unknown } | null)?.name).filter((n): n is string => typeof n === "string");
  } catch {
    // A missing or broken config completes to nothing; the command itself will say what is wrong.
    return [];
  }
}

export interface CompletionOptions {
  readonly program: Command;
  readonly shell?: string | undefined;
  /** Print the config's destination names, one per line (what the scripts call). */
  readonly destinations?: boolean;
  readonly config?: string | undefined;
}

/** `kubecano completion bash|zsh|fish`, and the scripts' `--destinations` helper. */
export async function completion(opts: CompletionOptions, io: Io): Promise<number> {
  if (opts.destinations === true) {
    for (const n of await destinationNames({ config: opts.config, env: io.env })) io.stdout.write(`${n}\n`);
    return ExitCode.OK;
  }
  if (opts.shell === undefined) throw new InputError("name a shell: kubecano completion bash, zsh or fish", "see kubecano completion --help for how to install the script");
  if (!(SHELLS as readonly string[]).includes(opts.shell)) throw new InputError(`no completion for shell "${opts.shell}": use bash, zsh or fish`);
  io.stdout.write(completionScript(opts.shell as Shell, opts.program));
  return ExitCode.OK;
}
