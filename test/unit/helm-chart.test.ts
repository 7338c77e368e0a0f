/**
 * The Helm chart in deploy/helm/kubecano, without a helm binary: its
 * values.schema.json is generated from kubecano's config schema (this test
 * fails when it drifts; `-u` rewrites it), accepts the chart's defaults and
 * README's examples and rejects broken values; the templates only use values
 * that exist and helpers that are defined; the ClusterRole grants exactly
 * the rules README lists.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { REPO_ROOT } from "../helpers/cli.js";
import { helmValuesSchema } from "../helpers/helm-values-schema.js";

const CHART = path.join(REPO_ROOT, "deploy", "helm", "kubecano");
const read = (...p: string[]): string => readFileSync(path.join(CHART, ...p), "utf8");
const defaults = parseYaml(read("values.yaml")) as Record<string, unknown>;
const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
const templates = readdirSync(path.join(CHART, "templates")).filter((f) => /\.(yaml|tpl|txt)$/.test(f));

function validator(): (values: unknown) => string[] {
  // Formats (uri...) are not checked: Helm's validator does not either.
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  const validate = ajv.compile(JSON.parse(read("values.schema.json")) as object);
  return (values) => (validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""}`));
}

/** The chart's values with `override` merged over them (objects merge, everything else replaces), as helm does with -f. */
function merged(override: Record<string, unknown>): Record<string, unknown> {
  const merge = (a: unknown, b: unknown): unknown => {
    if (a === null || b === null || typeof a !== "object" || typeof b !== "object" || Array.isArray(a) || Array.isArray(b)) return b;
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out;
  };
  return merge(defaults, override) as Record<string, unknown>;
}

/** ```yaml blocks of README's Helm section that start with `# values.yaml`. */
function readmeValues(): Record<string, unknown>[] {
  const start = readme.indexOf("## Install on Kubernetes with Helm");
  expect(start, "README.md has no \"Install on Kubernetes with Helm\" section").toBeGreaterThan(0);
  const end = readme.indexOf("\n## ", start + 10);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```yaml\n(# values\.yaml[^\n]*\n[\s\S]*?)```/g)].map((m) => parseYaml(m[1]!) as Record<string, unknown>);
}

describe("values.schema.json", () => {
  it("is generated from kubecano's config schema", async () => {
    await expect(`${JSON.stringify(helmValuesSchema(), null, 2)}\n`).toMatchFileSnapshot(path.join(CHART, "values.schema.json"));
  });

  it("accepts the chart's defaults", () => {
    expect(validator()(defaults)).toEqual([]);
  });

  it("accepts README's values examples", () => {
    const examples = readmeValues();
    expect(examples.length).toBeGreaterThanOrEqual(2);
    const validate = validator();
    for (const e of examples) expect(validate(merged(e)), JSON.stringify(e)).toEqual([]);
  });

  it("accepts what the config accepts: routes, workflows, delivery, watch settings, every destination type", () => {
    const values = merged({
      clusterName: "prod-eu",
      destinations: [
        { name: "slack-main", type: "slack", params: { channel: "#alerts", username: "kubecano" }, secretParams: { token: { name: "kubecano-slack", key: "token" } } },
        { name: "hook", type: "webhook", params: { url: "https://example.com/hook" }, secretParams: { secret: { name: "hook", key: "hmac" } } },
        { name: "pd", type: "pagerduty", secretParams: { routing_key: { name: "pd", key: "key" } } },
        { name: "teams", type: "msteams", secretParams: { webhook_url: { name: "teams", key: "url" } } },
        { name: "audit", type: "file", params: { path: "/var/lib/kubecano/audit.ndjson" } },
        { name: "terminal", type: "console" },
      ],
      routes: [{ name: "payments", match: { namespaces: ["payments-*"] }, destinations: ["pd", "slack-main"] }],
      defaultDestinations: ["slack-main"],
      workflows: [{ name: "payments-context", triggers: [{ on_issue: { severity: "HIGH", namespace: "payments-*" } }], actions: [{ pod_logs: { tail_lines: 300 } }] }],
      delivery: { maxBacklog: 20000, retry: { maxAge: "12h" }, shutdownGrace: "20s" },
      enrichment: { concurrency: 4 },
      severityMap: { p1: "HIGH" },
      server: { maxBodyBytes: 20971520, auth: { bearerToken: { name: "kubecano-auth", key: "token" } }, tls: { secretName: "kubecano-tls" } },
      watch: { namespaces: ["team-*"], excludeNamespaces: ["kube-system"], reasons: { exclude: ["Unhealthy"] }, rateLimitWindow: "2h", severity: { JobFailed: "HIGH" }, leaderElection: { leaseDuration: "20s" } },
      replicaCount: 2,
      persistence: { enabled: false },
      serviceMonitor: { enabled: true, labels: { release: "prometheus" } },
      podDisruptionBudget: { enabled: true, minAvailable: 1 },
    });
    expect(validator()(values)).toEqual([]);
  });

  const broken: [string, Record<string, unknown>, RegExp][] = [
    ["a misspelt chart key", { replicas: 2 }, /must NOT have additional properties/],
    ["an unknown destination type", { destinations: [{ name: "x", type: "carrier-pigeon" }] }, /destinations\/0/],
    ["a secret parameter the destination type does not have", { destinations: [{ name: "s", type: "slack", secretParams: { tokn: { name: "a", key: "b" } } }] }, /destinations\/0/],
    ["a secret reference without its key", { destinations: [{ name: "s", type: "slack", secretParams: { token: { name: "a" } } }] }, /destinations\/0/],
    ["a secret written into params of an unknown name", { destinations: [{ name: "s", type: "slack", params: { channnel: "#a" } }] }, /destinations\/0/],
    ["a destination name with a space", { destinations: [{ name: "my slack", type: "console" }] }, /destinations\/0/],
    ["server.port (the chart's service.targetPort)", { server: { port: 9000 } }, /\/server must NOT have additional properties/],
    ["a plain-text bearer token", { server: { auth: { bearerToken: "s3cr3t-s3cr3t-s3cr3t" } } }, /\/server\/auth\/bearerToken must be object/],
    ["both bearer and basic auth", { server: { auth: { bearerToken: { name: "a", key: "b" }, basic: { username: "u", password: { name: "a", key: "p" } } } } }, /\/server\/auth must NOT be valid/],
    ["an unknown watch setting", { watch: { namespace: ["x"] } }, /\/watch must NOT have additional properties/],
    ["a bad Lease name", { watch: { leaderElection: { leaseName: "Kube_Cano" } } }, /\/watch\/leaderElection\/leaseName must match pattern/],
    ["a severity that does not exist", { severityMap: { p1: "URGENT" } }, /\/severityMap\/p1 must be equal to one of the allowed values/],
    ["a negative replica count", { replicaCount: -1 }, /\/replicaCount must be >= 0/],
    ["an unknown log level", { logLevel: "loud" }, /\/logLevel must be equal to one of the allowed values/],
    ["an unknown pull policy", { image: { pullPolicy: "Sometimes" } }, /\/image\/pullPolicy must be equal to one of the allowed values/],
    ["a service port out of range", { service: { port: 70000 } }, /\/service\/port must be <= 65535/],
  ];
  for (const [what, override, problem] of broken) {
    it(`rejects ${what}`, () => {
      const problems = validator()(merged(override));
      expect(problems.join("\n")).toMatch(problem);
    });
  }
});

describe("templates", () => {
  const all = templates.map((f) => ({ file: f, text: read("templates", f) }));

  it("use only values the chart's schema defines (a misspelt .Values path renders as empty)", () => {
    const schema = JSON.parse(read("values.schema.json")) as { properties?: Record<string, unknown> };
    const has = (p: string[]): boolean => {
      let node: { properties?: Record<string, unknown> } | undefined = schema;
      for (const k of p) {
        node = node?.properties?.[k] as { properties?: Record<string, unknown> } | undefined;
        if (node === undefined) return false;
      }
      return true;
    };
    const missing: string[] = [];
    for (const { file, text } of all) {
      for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const p = m[1]!.slice(1).split(".");
        if (!has(p)) missing.push(`${file}: .Values.${p.join(".")}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("include only defined helpers, and every block is closed", () => {
    const defined = new Set([...all.flatMap(({ text }) => [...text.matchAll(/define "([^"]+)"/g)].map((m) => m[1]!))]);
    for (const { file, text } of all) {
      for (const m of text.matchAll(/include "([^"]+)"/g)) expect(defined.has(m[1]!), `${file} includes ${m[1]}`).toBe(true);
      const opens = [...text.matchAll(/\{\{-?\s*(if|range|with|define)\b/g)].length;
      const ends = [...text.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
      expect(ends, `${file}: ${opens} blocks opened, ${ends} closed`).toBe(opens);
    }
  });

  it("run kubecano listen as uid 10001 with a read-only root filesystem, probes on /livez and /readyz, and the requested resources", () => {
    const d = read("templates", "deployment.yaml");
    expect(d).toContain("path: /livez");
    expect(d).toContain("path: /readyz");
    expect(d).toMatch(/command: \["kubecano", "listen"\]/);
    expect(defaults["podSecurityContext"]).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } });
    expect(defaults["securityContext"]).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(defaults["resources"]).toMatchObject({ requests: { cpu: "50m", memory: "128Mi" } });
    // The only writable places: the state directory and /tmp.
    expect([...d.matchAll(/mountPath: (\S+)/g)].map((m) => m[1])).toEqual(["/etc/kubecano/kubecano.config.yaml", "/var/lib/kubecano", "/tmp", "/etc/kubecano/tls"]);
  });

  it("grant exactly the read-only rules README lists under RBAC (with the cluster watch and Helm releases on)", () => {
    const rbac = readme.slice(readme.indexOf("\n## RBAC"));
    const listed = (parseYaml(/```yaml\n([\s\S]*?)```/.exec(rbac)![1]!) as { rules: unknown[] }).rules;
    // The template with watch.enabled and watch.helm: conditionals resolved, template lines dropped.
    const text = read("templates", "clusterrole.yaml")
      .replace(/\{\{ if \$watch \}\}(.*?)\{\{ end \}\}/g, "$1")
      .split("\n")
      .filter((l) => !/^\s*\{\{-/.test(l))
      .join("\n")
      .replace(/\{\{[^}]*\}\}/g, "x");
    const role = parseAllDocuments(text)[0]!.toJSON() as { kind: string; rules: { verbs: string[] }[] };
    expect(role.kind).toBe("ClusterRole");
    const norm = (rules: unknown[]): string[] => rules.map((r) => JSON.stringify(r)).sort();
    expect(norm(role.rules)).toEqual(norm(listed));
    for (const r of role.rules) expect(r.verbs.filter((v) => !["get", "list", "watch"].includes(v))).toEqual([]);
    const leases = read("templates", "role.yaml");
    expect(leases).toMatch(/resources: \[leases\]\n\s+verbs: \[get, create, update\]/);
    expect(rbac).toMatch(/leases[\s\S]*get, create, update/);
  });
});
