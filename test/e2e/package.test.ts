/**
 * The npm package, as a user (and the container image) gets it: `npm pack`
 * holds only what runs kubecano, and the tarball installed with
 * --omit=dev into an empty prefix runs `kubecano --version` and serves
 * `kubecano listen`. deploy/Dockerfile builds its image from the same
 * tarball the same way, so this is also the image's file tree (no Docker
 * engine runs here). The checks use the built dist/ (npm test builds first).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, cliEnv, eventually, makeTempDir, PACKAGE_VERSION, postAlerts, removeTempDir, REPO_ROOT, request } from "../helpers/cli.js";

const run = promisify(execFile);
const NPM = "npm";
const NPX = "npx";

interface PackFile {
  readonly path: string;
  readonly mode: number;
}

/** npm's own environment for these runs: no update check, no audit, no funding lines. */
function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...cliEnv(), npm_config_update_notifier: "false", npm_config_audit: "false", npm_config_fund: "false", ...extra };
}

/** Every .ts/.tsx module under src/, as the dist/ .js path tsc makes of it. */
function expectedDist(dir = path.join(REPO_ROOT, "src")): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...expectedDist(p));
    else if (/\.tsx?$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(`dist/${path.relative(path.join(REPO_ROOT, "src"), p).replace(/\.tsx?$/, ".js").split(path.sep).join("/")}`);
  }
  return out;
}

describe("npm package", () => {
  let files: PackFile[];

  beforeAll(async () => {
    assertBuilt();
    const { stdout } = await run(NPM, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPO_ROOT, env: npmEnv(), maxBuffer: 16 * 1024 * 1024 });
    files = (JSON.parse(stdout) as { files: PackFile[] }[])[0]!.files;
  });

  it("contains only the CLI: bin/, compiled JavaScript, README, LICENSE and package.json", () => {
    const names = files.map((f) => f.path);
    const stray = names.filter((n) => !["package.json", "README.md", "LICENSE", "bin/kubecano"].includes(n) && !/^dist\/.+\.js$/.test(n));
    expect(stray).toEqual([]);
    for (const n of ["package.json", "README.md", "LICENSE", "bin/kubecano", "dist/cli.js"]) expect(names).toContain(n);
    // No source maps, sources, tests, benchmarks, docs or deploy files.
    expect(names.filter((n) => /\.map$|\.ts$|^(src|test|bench|docs|examples|deploy|completions|node_modules)\//.test(n))).toEqual([]);
  });

  it("carries every compiled module and an executable bin", () => {
    const names = new Set(files.map((f) => f.path));
    expect(expectedDist().filter((p) => !names.has(p))).toEqual([]);
    const bin = files.find((f) => f.path === "bin/kubecano")!;
    expect(bin.mode & 0o111).toBe(0o111);
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { bin: Record<string, string> };
    expect(pkg.bin).toEqual({ kubecano: "bin/kubecano" });
  });
});

describe("deploy/Dockerfile", () => {
  const dockerfile = readFileSync(path.join(REPO_ROOT, "deploy", "Dockerfile"), "utf8");
  const lines = dockerfile.split("\n").filter((l) => !l.startsWith("#"));
  const froms = lines.filter((l) => l.startsWith("FROM "));

  it("builds on Node 22 LTS in two stages and ships the npm package installed like the test below does", () => {
    expect(dockerfile).toContain("ARG NODE_IMAGE=node:22-bookworm");
    expect(froms).toEqual(["FROM ${NODE_IMAGE} AS build", "FROM node:22-bookworm-slim"]);
    expect(dockerfile).toMatch(/npm pack --ignore-scripts/);
    expect(dockerfile).toMatch(/npm install --global --prefix \/opt\/kubecano --omit=dev .*--allow-scripts=better-sqlite3/);
    // The runtime stage takes the install only: no sources, no dev dependencies, no compiler.
    const runtime = lines.slice(lines.indexOf("FROM node:22-bookworm-slim"));
    expect(runtime.filter((l) => l.startsWith("COPY"))).toEqual(["COPY --from=build /opt/kubecano /opt/kubecano"]);
  });

  it("runs as uid 10001 with the state directory as a volume, entrypoint kubecano listen --watch", () => {
    const runtime = lines.slice(lines.indexOf("FROM node:22-bookworm-slim"));
    expect(runtime.filter((l) => l.startsWith("USER "))).toEqual(["USER 10001:10001"]);
    expect(dockerfile).toMatch(/KUBECANO_STATE_DIR=\/var\/lib\/kubecano/);
    expect(runtime).toContain('VOLUME ["/var/lib/kubecano"]');
    expect(runtime.filter((l) => l.startsWith("ENTRYPOINT"))).toEqual(['ENTRYPOINT ["kubecano", "listen", "--watch"]']);
    // Its build context sends only what the image needs.
    const ignore = readFileSync(path.join(REPO_ROOT, "deploy", "Dockerfile.dockerignore"), "utf8").split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(ignore[0]).toBe("*");
    for (const copied of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "README.md", "LICENSE", "bin/", "src/"]) expect(ignore).toContain(`!${copied}`);
  });
});

describe("the tarball installed with --omit=dev (the container image's file tree)", () => {
  let work: string;
  let tarball: string;
  let prefix: string;
  let installed: string;
  let kubecano: string;

  beforeAll(async () => {
    assertBuilt();
    work = await makeTempDir("kubecano-pack-");
    // The unprivileged run below must reach the installed tree.
    chmodSync(work, 0o755);
    const { stdout } = await run(NPM, ["pack", "--json", "--ignore-scripts", "--pack-destination", work], { cwd: REPO_ROOT, env: npmEnv(), maxBuffer: 16 * 1024 * 1024 });
    tarball = path.join(work, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
    prefix = path.join(work, "prefix");
    // As deploy/Dockerfile does, with the native addon's build script held back (see below).
    await run(NPM, ["install", "--global", "--prefix", prefix, "--omit=dev", "--ignore-scripts", "--prefer-offline", tarball], { cwd: work, env: npmEnv(), maxBuffer: 16 * 1024 * 1024, timeout: 600_000 });
    installed = path.join(prefix, "lib", "node_modules", "kubecano");
    kubecano = path.join(prefix, "bin", "kubecano");
    // better-sqlite3 compiles from source when no prebuilt binary can be downloaded (minutes on a busy CI machine).
    // The repository's build of the same version for the same Node is the same file: reuse it, else build it.
    const want = (dir: string): string => (JSON.parse(readFileSync(path.join(dir, "node_modules", "better-sqlite3", "package.json"), "utf8")) as { version: string }).version;
    const addon = path.join("node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node");
    if (want(installed) === want(REPO_ROOT) && existsSync(path.join(REPO_ROOT, addon))) {
      mkdirSync(path.dirname(path.join(installed, addon)), { recursive: true });
      copyFileSync(path.join(REPO_ROOT, addon), path.join(installed, addon));
    } else {
      await run(NPM, ["rebuild", "better-sqlite3", "--foreground-scripts"], { cwd: installed, env: npmEnv(), maxBuffer: 16 * 1024 * 1024, timeout: 900_000 });
    }
  }, 1_200_000);

  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    if (tarball !== undefined) await removeNpxInstall(tarball);
    if (work !== undefined) await removeTempDir(work);
  });

  const children = new Set<ChildProcess>();

  it("installs the package's files and its production dependencies only", () => {
    expect(existsSync(path.join(installed, "dist", "cli.js"))).toBe(true);
    expect(existsSync(path.join(installed, "src"))).toBe(false);
    expect(existsSync(path.join(installed, "test"))).toBe(false);
    const deps = new Set(readdirSync(path.join(installed, "node_modules")));
    for (const dev of ["typescript", "vitest", "fast-check", "autocannon", "ink-testing-library"]) expect(deps.has(dev), dev).toBe(false);
    for (const dep of ["better-sqlite3", "commander", "pino", "@opentelemetry", "@kubernetes"]) expect(deps.has(dep), dep).toBe(true);
  });

  it("kubecano --version prints the package version", async () => {
    const { stdout } = await run(kubecano, ["--version"], { cwd: work, env: cliEnv() });
    expect(stdout.trim()).toBe(PACKAGE_VERSION);
  });

  it("kubecano listen serves from the installed tree as an unprivileged user that can write only its state directory", async () => {
    const asRoot = process.getuid?.() === 0;
    const stateDir = path.join(work, "state");
    mkdirSync(stateDir);
    // uid 10001 as in the image: the install (root-owned) is read-only for it, like the image's root filesystem.
    if (asRoot) chownSync(stateDir, 10001, 10001);
    else chmodSync(stateDir, 0o700);
    const child = spawn(process.execPath, [kubecano, "listen", "--host", "127.0.0.1", "--port", "0", "--log-format", "json", "--no-cluster"], {
      cwd: "/",
      env: cliEnv({ KUBECANO_STATE_DIR: stateDir, HOME: "/nonexistent" }),
      stdio: ["ignore", "pipe", "pipe"],
      ...(asRoot ? { uid: 10001, gid: 10001 } : {}),
    });
    children.add(child);
    let out = "";
    let err = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
    const port = await eventually(() => {
      if (child.exitCode !== null) throw new Error(`kubecano exited ${child.exitCode}: ${err}`);
      const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(err);
      return m !== null ? Number(m[1]) : undefined;
    }, `the listening line\n${err}`, 45_000);
    const url = `http://127.0.0.1:${port}`;
    expect((await request(`${url}/readyz`)).status).toBe(200);
    const alert = JSON.parse(readFileSync(path.join(REPO_ROOT, "test", "fixtures", "alertmanager", "firing-crashloop.json"), "utf8")) as { body: unknown };
    const reply = await postAlerts(url, alert.body);
    expect(reply.status).toBe(202);
    // The embedded default: a console destination prints the Issue.
    await eventually(() => out.includes("Pod is crash looping."), `the Issue on stdout\n${out}\n${err}`);
    // The durable queue lives in the state directory.
    expect(readdirSync(stateDir)).toContain("kubecano.db");
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 90_000);

  it("npx runs the tarball", async () => {
    // Install scripts held back: --version opens no state directory, and compiling the addon again costs minutes.
    const { stdout } = await run(NPX, ["--yes", "--prefer-offline", "--ignore-scripts", `--package=${tarball}`, "--", "kubecano", "--version"], {
      cwd: work,
      env: npmEnv(),
      maxBuffer: 16 * 1024 * 1024,
      timeout: 600_000,
    });
    expect(stdout.trim().split("\n").at(-1)).toBe(PACKAGE_VERSION);
  }, 600_000);
});

/** npx keeps what it installed under the npm cache's _npx/, one directory per package spec: remove this run's. */
async function removeNpxInstall(tarball: string): Promise<void> {
  const { stdout } = await run(NPM, ["config", "get", "cache"], { env: npmEnv() });
  const root = path.join(stdout.trim(), "_npx");
  if (!existsSync(root)) return;
  for (const d of readdirSync(root)) {
    const pkg = path.join(root, d, "package.json");
    if (existsSync(pkg) && readFileSync(pkg, "utf8").includes(tarball)) await removeTempDir(path.join(root, d));
  }
}
