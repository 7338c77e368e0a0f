import { z } from "zod";
import { configSchema } from "../../src/config/schema.js";

/**
 * The Helm chart's values.schema.json (deploy/helm/kubecano), derived from
 * kubecano's config schema: the keys that mirror the config (clusterName,
 * routes, workflows, watch...) are its JSON Schema as they are, destinations
 * take their params per type with secrets moved to `secretParams` (a Secret's
 * name and key), and the chart's own keys (image, persistence...) are
 * written here. Draft-07, as Helm validates. test/unit/helm-chart.test.ts
 * fails when the file drifts (`-u` rewrites it).
 */

type Json = Record<string, unknown>;

const secretRef: Json = {
  type: "object",
  description: "A key of an existing Secret in the release's namespace.",
  properties: { name: { type: "string", minLength: 1 }, key: { type: "string", minLength: 1 } },
  required: ["name", "key"],
  additionalProperties: false,
};

const str: Json = { type: "string" };
const bool: Json = { type: "boolean" };
const obj: Json = { type: "object" };
const arr: Json = { type: "array" };
const stringMap: Json = { type: "object", additionalProperties: { type: "string" } };
const quantity: Json = { type: ["string", "number"] };

function strict(properties: Json, required: string[] = []): Json {
  return { type: "object", properties, ...(required.length > 0 ? { required } : {}), additionalProperties: false };
}

/** A destination of the chart: the config's, with its params' requirements left to kubecano (a secret one may come from secretParams). */
function destinationVariant(variant: Json): Json {
  const props = variant["properties"] as Json;
  const params = (props["params"] ?? { type: "object", properties: {}, additionalProperties: false }) as Json;
  const { required: _r, anyOf: _a, oneOf: _o, allOf: _l, default: _d, ...relaxed } = params;
  const names = Object.keys((params["properties"] ?? {}) as Json);
  return strict(
    {
      name: props["name"],
      type: props["type"],
      params: relaxed,
      secretParams: {
        type: "object",
        description: "Parameters read from existing Secrets: parameter → { name, key }.",
        ...(names.length > 0 ? { propertyNames: { enum: names } } : {}),
        additionalProperties: secretRef,
      },
    },
    ["name", "type"],
  );
}

export function helmValuesSchema(): Json {
  const config = z.toJSONSchema(configSchema, { io: "input", target: "draft-7", unrepresentable: "any" }) as Json;
  const c = config["properties"] as Json;
  const destinationItems = (c["destinations"] as Json)["items"] as Json;
  const variants = (destinationItems["oneOf"] ?? destinationItems["anyOf"]) as Json[];
  const server = c["server"] as Json;
  const { host: _h, port: _p, auth: _a, tls: _t, ...serverRest } = server["properties"] as Json;
  const watch = c["watch"] as Json;

  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "kubecano Helm chart values",
    description: "Generated from kubecano's config schema by test/helpers/helm-values-schema.ts: do not edit.",
    type: "object",
    additionalProperties: false,
    properties: {
      global: obj,
      // The config's keys.
      clusterName: c["clusterName"],
      destinations: { type: "array", description: "Where Issues go: the config's destinations, secrets in secretParams.", items: { oneOf: variants.map(destinationVariant) } },
      routes: c["routes"],
      defaultDestinations: c["defaultDestinations"],
      workflows: c["workflows"],
      enrichment: c["enrichment"],
      severityMap: c["severityMap"],
      delivery: c["delivery"],
      server: {
        type: "object",
        description: "The config's server section; host and port are the chart's, auth and TLS come from Secrets.",
        properties: {
          ...serverRest,
          auth: {
            type: "object",
            description: "Credentials Alertmanager must send on /api/*: a bearer token or basic auth, from a Secret.",
            properties: {
              bearerToken: secretRef,
              basic: strict({ username: { type: "string", minLength: 1 }, password: secretRef }, ["username", "password"]),
            },
            additionalProperties: false,
            not: { required: ["bearerToken", "basic"] },
          },
          tls: strict({ secretName: { type: "string", description: "A kubernetes.io/tls Secret to serve HTTPS with." } }),
        },
        additionalProperties: false,
      },
      watch: {
        ...watch,
        default: undefined,
        description: "Watch the cluster (listen --watch); the other keys are the config's watch section.",
        properties: { enabled: { type: "boolean", description: "Run the cluster watchers (listen --watch)." }, ...(watch["properties"] as Json) },
      },
      // The chart's own keys.
      image: strict({ repository: { type: "string", minLength: 1 }, tag: str, pullPolicy: { enum: ["Always", "IfNotPresent", "Never"] } }, ["repository"]),
      imagePullSecrets: arr,
      nameOverride: str,
      fullnameOverride: str,
      replicaCount: { type: "integer", minimum: 0 },
      logLevel: { enum: ["trace", "debug", "info", "warn", "error", "fatal", "silent"] },
      extraArgs: { type: "array", items: str },
      extraEnv: { type: "array", items: obj },
      serviceAccount: strict({ create: bool, name: str, annotations: stringMap }),
      rbac: strict({ create: bool }),
      service: strict({ type: { enum: ["ClusterIP", "NodePort", "LoadBalancer"] }, port: { type: "integer", minimum: 1, maximum: 65535 }, targetPort: { type: "integer", minimum: 1, maximum: 65535 }, annotations: stringMap }),
      resources: obj,
      podSecurityContext: obj,
      securityContext: obj,
      terminationGracePeriodSeconds: { type: "integer", minimum: 0 },
      persistence: strict({
        enabled: bool,
        existingClaim: str,
        storageClassName: str,
        accessModes: { type: "array", items: str },
        size: quantity,
        annotations: stringMap,
        emptyDirSizeLimit: quantity,
      }),
      serviceMonitor: strict({ enabled: bool, interval: str, scrapeTimeout: str, labels: stringMap, insecureSkipVerify: bool }),
      podDisruptionBudget: strict({ enabled: bool, minAvailable: { type: ["integer", "string"] }, maxUnavailable: { type: ["integer", "string"] } }),
      podAnnotations: stringMap,
      podLabels: stringMap,
      priorityClassName: str,
      nodeSelector: stringMap,
      tolerations: arr,
      affinity: obj,
      topologySpreadConstraints: arr,
    },
  };
}
