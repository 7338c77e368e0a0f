/**
 * `kubecano tui` in a real terminal: tmux runs a shell, the shell runs the
 * built CLI against a running `kubecano listen` that a real Alertmanager
 * sends to and that enriches from the Kubernetes fake. The test reads the
 * screen with capture-pane and types with send-keys, as a person would.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { crashLoopingPod, startKubeFake, type KubeFake } from "../fakes/kube.js";
import { alertmanagerGate, startAlertmanager, stopAllAlertmanagers, type Alertmanager } from "../helpers/alertmanager.js";
import { BIN, makeTempDir, postAlerts, REPO_ROOT, removeTempDir, runCli, startListen, stopAllChildren, tempDirWith, type Listener } from "../helpers/cli.js";
import { addCrashLoopOom, CRASHLOOP } from "../helpers/cluster-scenarios.js";

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const TOKEN = "tui-e2e-token-0123456789abcdef";
const FIRING = (JSON.parse(readFileSync(path.join(REPO_ROOT, "test", "fixtures", "alertmanager", "firing-crashloop.json"), "utf8")) as { body: unknown }).body;
const SOCKET = `kubecano-tui-e2e-${process.pid}`;
const SESSION = "tui";

function hasTmux(): boolean {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// In CI a missing tmux or Alertmanager fails the test (.ci/run installs both); elsewhere it skips.
const am = alertmanagerGate();
const skip = process.env["CI"] !== "true" && (!hasTmux() || am.skip);

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-L", SOCKET, "-f", "/dev/null", ...args], { encoding: "utf8", env: shellEnv() });
}

/** The shell's environment: no CI variable (ink would draw nothing), no colours to read around. */
function shellEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", TERM: "xterm-256color" };
  for (const k of ["CI", "CONTINUOUS_INTEGRATION", "KUBECANO_CONFIG", "KUBECANO_URL", "KUBECANO_TOKEN", "NODE_OPTIONS", "FORCE_COLOR"]) delete env[k];
  return env;
}

let session = SESSION;
const screen = (): string => tmux("capture-pane", "-p", "-t", session);
const flag = (name: string): string => tmux("display-message", "-p", "-t", session, `#{${name}}`).trim();
const type = (text: string): void => void tmux("send-keys", "-t", session, "-l", text);
const key = (...keys: string[]): void => void tmux("send-keys", "-t", session, ...keys);

/** A new tmux session running sh with a known prompt; later calls talk to it. */
async function newShell(name: string): Promise<void> {
  session = name;
  // PS1 on the command line: an inherited one is not always taken (root's sh sets its own).
  tmux("new-session", "-d", "-x", "160", "-y", "48", "-s", name, "env PS1='tui-e2e$ ' sh");
  await waitForScreen((s) => s.includes("tui-e2e$"), "the shell prompt", 30_000);
}

/**
 * Polls the screen until `check` holds for two captures in a row that are
 * the same: a capture can fall in the middle of a redraw (old lines erased,
 * new ones not yet written).
 */
async function waitForScreen(check: (s: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let previous: string | undefined;
  for (;;) {
    last = screen();
    if (check(last) && last === previous) return last;
    previous = check(last) ? last : undefined;
    if (Date.now() > deadline) throw new Error(`the screen never showed ${what}; it shows:\n${last}`);
    await new Promise((r) => setTimeout(r, previous !== undefined ? 50 : 200));
  }
}

describe.skipIf(skip)("kubecano tui in tmux", () => {
  let kube: KubeFake;
  let listener: Listener;
  let alertmanager: Alertmanager;
  let dir: string;

  beforeAll(async () => {
    kube = await startKubeFake();
    addCrashLoopOom(kube, new Date());
    const cwd = await tempDirWith({ "kubecano.config.yaml": `server:\n  auth:\n    bearerToken: ${TOKEN}\n` });
    listener = await startListen(["--kubeconfig", kube.kubeconfigPath()], { cwd });
    alertmanager = await startAlertmanager({ webhook: { url: `${listener.url}/api/alerts`, bearerToken: TOKEN } });
    dir = await makeTempDir("kubecano-tui-e2e-");
  });

  afterAll(async () => {
    try {
      tmux("kill-server");
    } catch {
      // not started
    }
    await stopAllAlertmanagers();
    await stopAllChildren();
    await kube?.close();
    if (dir !== undefined) await removeTempDir(dir);
  });

  it("shows an Alertmanager alert as it arrives, opens its enriched detail, filters, quits and gives the terminal back", async () => {
    await newShell(SESSION);
    const stty = path.join(dir, "stty-before");
    type(`stty -g > ${stty}; echo BEFORE-TUI-MARKER`);
    key("Enter");
    await waitForScreen((s) => /^BEFORE-TUI-MARKER$/m.test(s), "the marker");
    expect(flag("alternate_on")).toBe("0");

    type(`${process.execPath} ${BIN} tui --url ${listener.url} --token ${TOKEN}; echo "TUI-EXIT=$?"`);
    key("Enter");
    let s = await waitForScreen((x) => x.includes("● live") && x.includes("No Issues yet"), "the live, empty list");
    expect(s.split("\n")[0]).toBe(`kubecano · ${listener.url} · ● live`);
    expect(flag("alternate_on")).toBe("1");
    expect(s).not.toContain("BEFORE-TUI-MARKER");

    // A real Alertmanager sends it; kubecano enriches it from the cluster and prints it on its console destination.
    await alertmanager.addAlert({
      labels: { alertname: "KubePodCrashLooping", namespace: CRASHLOOP.namespace, pod: CRASHLOOP.pod, container: CRASHLOOP.container, severity: "warning" },
      annotations: { summary: "Pod is crash looping.", description: `Pod ${CRASHLOOP.namespace}/${CRASHLOOP.pod} (${CRASHLOOP.container}) is in waiting state (reason: CrashLoopBackOff).` },
    });
    s = await waitForScreen((x) => /▶ LOW\s+FIRING\s+\d+[sm]\s+Pod is crash looping\.\s+shop\/pod\/api-7d9f\s+console ✔/.test(x), "the alert, delivered");
    await waitForScreen((x) => /LOW 1\s+INFO 0\s+DEBUG 0\s+│ received 1 · sent 1 · failed 0 · queued 0/.test(x), "the counters");

    // Its detail, with the enrichments read from the cluster.
    key("Enter");
    s = await waitForScreen((x) => x.includes("● FIRING  LOW  Pod is crash looping.") && x.includes("── "), "the detail view");
    expect(s).toContain("KubePodCrashLooping · cluster");
    expect(s).toContain("is in waiting state (reason: CrashLoopBackOff).");
    expect(s).toMatch(/✔ console sent after 1 attempt/);
    expect(s).toMatch(/OOMKilled/);
    // Scrolling reaches the logs at the end.
    key("G");
    s = await waitForScreen((x) => /lines \d+-(\d+)\/\1/.test(x), "the end of the detail");
    expect(s).toContain("fingerprint ");

    key("Escape");
    s = await waitForScreen((x) => /SEV\s+STATUS\s+AGE\s+TITLE/.test(x), "the list again");

    // A filter that matches nothing, cleared with esc; then one that matches.
    type("/");
    await waitForScreen((x) => /^\/\s+\d+ of 1 · enter keeps the filter/m.test(x), "the filter prompt");
    type("no-such-thing");
    await waitForScreen((x) => x.includes("No Issue matches the filter"), "an empty result");
    key("Escape");
    await waitForScreen((x) => x.includes("Pod is crash looping.") && /^1 Issues · /m.test(x), "the filter cleared");
    type("/crash");
    key("Enter");
    s = await waitForScreen((x) => /^filter: "crash" · 1 of 1 · /m.test(x), "the kept filter");
    expect(s).toMatch(/▶ LOW\s+FIRING.*Pod is crash looping\./);

    key("q");
    s = await waitForScreen((x) => /^TUI-EXIT=\d+$/m.test(x), "the shell after the UI");
    expect(s).toMatch(/^TUI-EXIT=0$/m);
    // The main screen is back as it was, with the prompt after it; the cursor shows; the tty modes are restored.
    expect(s).toMatch(/^BEFORE-TUI-MARKER$/m);
    expect(s).not.toContain("● live");
    expect(flag("alternate_on")).toBe("0");
    expect(flag("cursor_flag")).toBe("1");
    type(`stty -g | cmp -s - ${stty} && echo TTY-MODES-RESTORED`);
    key("Enter");
    await waitForScreen((x) => /^TTY-MODES-RESTORED$/m.test(x), "the same tty modes as before");
  });

  it("prints lines without a terminal, and --once lists what is there", async () => {
    const once = await runCli(["tui", "--url", listener.url, "--token", TOKEN, "--once"]);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toMatch(/^\S+Z FIRING {3}LOW {3}Pod is crash looping\. {2}shop\/pod\/api-7d9f {2}→ console$/m);
    const json = await runCli(["tui", "--url", listener.url, "--token", TOKEN, "--once", "--json"]);
    const doc = JSON.parse(json.stdout.trim().split("\n")[0]!) as { issue: { title: string; enrichments: unknown[] }; deliveries: { state: string }[] };
    expect(doc.issue.title).toBe("Pod is crash looping.");
    expect(doc.issue.enrichments.length).toBeGreaterThan(0);
    expect(doc.deliveries).toEqual([expect.objectContaining({ destination: "console", state: "sent" })]);
    const refused = await runCli(["tui", "--url", listener.url, "--once"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^kubecano: http:\/\/127\.0\.0\.1:\d+ refused the credentials \(401\)/);
    expect(refused.stderr).toMatch(/hint: pass the daemon's bearer token with --token/);
    const nowhere = await runCli(["tui"]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/pass --url URL/);
    // The listener's stdout is the console destination: the alert went there too.
    expect(listener.stdout()).toContain("Pod is crash looping.");
  });
});

describe.skipIf(skip)("the UI in the daemon's own process, in tmux", () => {
  let dir: string;
  let kube: KubeFake | undefined;
  beforeAll(async () => {
    dir = await makeTempDir("kubecano-tui-e2e-");
  });
  afterAll(async () => {
    try {
      tmux("kill-server");
    } catch {
      // not started
    }
    await kube?.close();
    await removeTempDir(dir);
  });

  it("listen --tui shows what it receives, keeps its logs in a pane, and q stops kubecano with its logs back on the terminal", async () => {
    await newShell("listen");
    const cwd = await tempDirWith({});
    type(`cd ${cwd} && ${process.execPath} ${BIN} listen --tui --host 127.0.0.1 --port 0 --ephemeral --no-cluster; echo "LISTEN-EXIT=$?"`);
    key("Enter");
    let s = await waitForScreen((x) => /^kubecano · listen http:\/\/127\.0\.0\.1:\d+ · ● live/.test(x), "the header");
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(s)![1]);
    // The daemon's log lines are in the pane, not over the UI.
    expect(s).toMatch(/── log ─+\n(.*\n)*.*listening: point Alertmanager at http:\/\/127\.0\.0\.1:\d+\/api\/alerts/);
    const r = await postAlerts(`http://127.0.0.1:${port}`, FIRING);
    expect(r.status, r.text).toBe(202);
    s = await waitForScreen((x) => /▶ LOW\s+FIRING\s+\d+s\s+Pod is crash looping\.\s+shop\/pod\/api-7d9f\s+console ✔/.test(x), "the Issue");
    // The console destination printed nothing over the UI.
    expect(s).not.toContain("fingerprint 0a732576aaf8ce3c");
    key("q");
    s = await waitForScreen((x) => /^LISTEN-EXIT=\d+$/m.test(x), "listen stopped");
    expect(s).toMatch(/^LISTEN-EXIT=0$/m);
    expect(s).toMatch(/INFO\s+shutting down: no longer accepting webhooks/);
    expect(flag("alternate_on")).toBe("0");
    expect(flag("cursor_flag")).toBe("1");
  });

  it("watch --tui shows the cluster's trouble as it is found", async () => {
    kube = await startKubeFake({ bookmarkIntervalMs: 500 });
    kube.add(crashLoopingPod({ name: "marker", namespace: "tui-e2e", node: "n1" }));
    await newShell("watch");
    type(`${process.execPath} ${BIN} watch --tui --kubeconfig ${kube.kubeconfigPath()} -n tui-e2e; echo "WATCH-EXIT=$?"`);
    key("Enter");
    let s = await waitForScreen((x) => /^kubecano · watch .* · ● live/.test(x) && x.includes("tui-e2e/pod/marker"), "the crash-looping pod");
    expect(s).toMatch(/FIRING\s+\d+[sm]\s+.*tui-e2e\/pod\/marker\s+terminal ✔/);
    key("q");
    s = await waitForScreen((x) => /^WATCH-EXIT=\d+$/m.test(x), "watch stopped");
    expect(s).toMatch(/^WATCH-EXIT=0$/m);
    expect(flag("alternate_on")).toBe("0");
  });
});
