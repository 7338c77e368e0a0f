/**
 * A local fake of the Kubernetes API server, on node:http (127.0.0.1, an
 * ephemeral port), for tests and benchmarks that drive the real
 * @kubernetes/client-node 1.4 against it:
 *
 *   const kube = await startKubeFake();
 *   kube.add(pod({ name: "web-1", node: "node-a" }));
 *   const kc = new KubeConfig();
 *   kc.loadFromFile(kube.kubeconfigPath());        // or kc.loadFromString(kube.kubeconfigYaml())
 *   const core = kc.makeApiClient(CoreV1Api);
 *
 * What it speaks, as the real server does (kube-apiserver + kubelet, checked
 * against kubernetes/kubernetes sources):
 * - JSON REST for the resources in RESOURCES (core/v1, apps/v1, batch/v1,
 *   coordination.k8s.io/v1): list (namespaced and across namespaces), get,
 *   create, update (PUT), delete, with the real optimistic-concurrency rules
 *   per resource (a stale `metadata.resourceVersion` on PUT is 409 Conflict;
 *   Leases refuse a PUT without one and may be created by PUT).
 * - Lists: `{kind: XList, apiVersion, metadata: {resourceVersion}, items}`,
 *   `labelSelector` (=, ==, !=, in, notin, exists, !key, >, <), `fieldSelector`
 *   (the fields the real server indexes per resource, unknown ones are 400),
 *   `limit` + `continue` paging over a consistent snapshot (tokens expire with
 *   410 once `compact()` passes them).
 * - Pod logs with the kubelet's rules for which container instance answers
 *   (see `handleLog`), text/plain.
 * - Watches (`?watch=true|1`, and the legacy `/watch/` path prefix): one JSON
 *   object per line, ADDED/MODIFIED/DELETED/BOOKMARK/ERROR, replay after a
 *   resourceVersion, synthetic ADDED for a watch without one, 410 Expired as
 *   an ERROR event for a resourceVersion older than the compaction point,
 *   selector-aware (an object leaving the selector is DELETED),
 *   `timeoutSeconds`, `allowWatchBookmarks`, `sendInitialEvents`.
 * - Errors as real `Status` objects with the real messages and reasons.
 * - Discovery (`/api`, `/apis`, `/api/v1`, `/apis/{g}/{v}`, `/version`), so
 *   generic clients (KubernetesObjectApi) can resolve kinds.
 * - Bearer-token authentication (401 without the token) and, on request,
 *   RBAC denials (403 with the real "cannot list resource" message).
 *
 * What it does not do (extension points, each answers a clear 405 or is
 * simply absent): PATCH, deletecollection, status subresources, graceful pod
 * deletion (a delete removes the object at once), admission/validation of
 * object bodies, namespace existence checks, following logs, protobuf and
 * Table output. Add a verb in `handleResource`, a resource in RESOURCES (or
 * `opts.resources`), a subresource next to `handleLog`.
 *
 * Test controls: an object store (`add`, `apply`, `update`, `modify`,
 * `remove`, `get`, `list`) where every write bumps one global resourceVersion
 * and reaches open watches; logs per (pod, container, current|previous);
 * watch controls (`compact`, `bookmark`, `dropWatches`, `expireWatches`,
 * `waitForWatches`); fault injection by request match (`delay`, `failNext`,
 * `hang`, `dropNext`, `forbid`); and a log of every request (`requests`,
 * `count`) so tests can count API calls.
 *
 * Builders for realistic objects are exported as plain functions (`pod`,
 * `crashLoopingPod`, `event`, `deployment`, `node`, `helmReleaseSecret`, ...)
 * and return JSON as the server would serve it (timestamps as RFC 3339
 * strings). Note that client-node turns timestamps into Date objects in list
 * and get answers but hands watch objects over as parsed JSON (strings).
 *
 * No dependency beyond node built-ins.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

// ───────────────────────────── object model ─────────────────────────────

/** RFC 3339 string, or a Date the builders format. */
export type Time = string | Date;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [key: string]: unknown;
}

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** A `Status` object, as every error (and a successful delete) is answered. */
export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: unknown[]; retryAfterSeconds?: number };
  code: number;
}

/** Thrown by the test-side store methods (and used internally) for what the server would answer as an error. */
export class KubeStatusError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.name = "KubeStatusError";
  }
}

// ───────────────────────────── resource registry ─────────────────────────────

/** Reads one field for a field selector; a missing field reads as "" (as the real server does). */
type FieldGetter = (o: KubeObject) => string;

/** One REST resource the fake serves. */
export interface ResourceType {
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  /** Plural, as in the URL. */
  readonly resource: string;
  readonly kind: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  /** Field selector keys beyond metadata.name / metadata.namespace. */
  readonly fields?: Readonly<Record<string, FieldGetter>>;
  /** DELETE answers the deleted object (pods) instead of a Success Status. */
  readonly returnDeletedObject?: boolean;
  /** PUT of a missing object creates it (Leases, Events, Services). */
  readonly allowCreateOnUpdate?: boolean;
  /** PUT without metadata.resourceVersion overwrites; false means 422 (Leases). Default true. */
  readonly allowUnconditionalUpdate?: boolean;
}

/** Dotted path read for field selectors: missing → "", booleans/numbers → their text. */
function field(path: string, fallback = ""): FieldGetter {
  const parts = path.split(".");
  return (o) => {
    let cur: unknown = o;
    for (const p of parts) {
      if (cur === null || typeof cur !== "object") return fallback;
      cur = (cur as Record<string, unknown>)[p];
    }
    if (cur === undefined || cur === null) return fallback;
    return typeof cur === "object" ? JSON.stringify(cur) : String(cur);
  };
}

/**
 * The resources served, with the field selectors the real server supports for
 * each (pkg/registry/<group>/<resource>/strategy.go ToSelectableFields) and
 * their update strategies.
 */
export const RESOURCES: readonly ResourceType[] = [
  {
    group: "", version: "v1", resource: "pods", kind: "Pod", singular: "pod", namespaced: true, shortNames: ["po"],
    returnDeletedObject: true,
    fields: {
      "spec.nodeName": field("spec.nodeName"),
      "spec.restartPolicy": field("spec.restartPolicy"),
      "spec.schedulerName": field("spec.schedulerName"),
      "spec.serviceAccountName": field("spec.serviceAccountName"),
      "spec.hostNetwork": field("spec.hostNetwork", "false"),
      "status.phase": field("status.phase"),
      "status.podIP": field("status.podIP"),
      "status.nominatedNodeName": field("status.nominatedNodeName"),
    },
  },
  {
    group: "", version: "v1", resource: "events", kind: "Event", singular: "event", namespaced: true, shortNames: ["ev"],
    allowCreateOnUpdate: true,
    fields: {
      "involvedObject.kind": field("involvedObject.kind"),
      "involvedObject.namespace": field("involvedObject.namespace"),
      "involvedObject.name": field("involvedObject.name"),
      "involvedObject.uid": field("involvedObject.uid"),
      "involvedObject.apiVersion": field("involvedObject.apiVersion"),
      "involvedObject.resourceVersion": field("involvedObject.resourceVersion"),
      "involvedObject.fieldPath": field("involvedObject.fieldPath"),
      reason: field("reason"),
      reportingComponent: field("reportingComponent"),
      source: field("source.component"),
      type: field("type"),
    },
  },
  {
    group: "", version: "v1", resource: "nodes", kind: "Node", singular: "node", namespaced: false, shortNames: ["no"],
    fields: { "spec.unschedulable": field("spec.unschedulable", "false") },
  },
  {
    group: "", version: "v1", resource: "secrets", kind: "Secret", singular: "secret", namespaced: true,
    fields: { type: field("type") },
  },
  {
    group: "", version: "v1", resource: "namespaces", kind: "Namespace", singular: "namespace", namespaced: false, shortNames: ["ns"],
    fields: { "status.phase": field("status.phase") },
  },
  { group: "", version: "v1", resource: "services", kind: "Service", singular: "service", namespaced: true, shortNames: ["svc"], allowCreateOnUpdate: true },
  { group: "", version: "v1", resource: "configmaps", kind: "ConfigMap", singular: "configmap", namespaced: true, shortNames: ["cm"] },
  { group: "apps", version: "v1", resource: "deployments", kind: "Deployment", singular: "deployment", namespaced: true, shortNames: ["deploy"] },
  {
    group: "apps", version: "v1", resource: "replicasets", kind: "ReplicaSet", singular: "replicaset", namespaced: true, shortNames: ["rs"],
    fields: { "status.replicas": field("status.replicas", "0") },
  },
  { group: "apps", version: "v1", resource: "statefulsets", kind: "StatefulSet", singular: "statefulset", namespaced: true, shortNames: ["sts"] },
  { group: "apps", version: "v1", resource: "daemonsets", kind: "DaemonSet", singular: "daemonset", namespaced: true, shortNames: ["ds"] },
  {
    group: "batch", version: "v1", resource: "jobs", kind: "Job", singular: "job", namespaced: true,
    fields: { "status.successful": field("status.succeeded", "0") },
  },
  { group: "batch", version: "v1", resource: "cronjobs", kind: "CronJob", singular: "cronjob", namespaced: true, shortNames: ["cj"] },
  {
    group: "coordination.k8s.io", version: "v1", resource: "leases", kind: "Lease", singular: "lease", namespaced: true,
    allowCreateOnUpdate: true, allowUnconditionalUpdate: false,
  },
];

const apiVersionOf = (rt: ResourceType): string => (rt.group === "" ? rt.version : `${rt.group}/${rt.version}`);
/** "pods", "deployments.apps", "leases.coordination.k8s.io": how the server names a resource in messages. */
const qualified = (rt: ResourceType): string => (rt.group === "" ? rt.resource : `${rt.resource}.${rt.group}`);

// ───────────────────────────── errors (real Status objects) ─────────────────────────────

function failure(code: number, reason: string, message: string, details?: KubeStatus["details"]): KubeStatus {
  const s: KubeStatus = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
  if (details !== undefined) s.details = details;
  return s;
}

/** The reason the real server gives with each status code (apimachinery errors.NewGenericServerResponse). */
const REASONS: Readonly<Record<number, string>> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Expired",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

const OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again";

const errNotFound = (rt: ResourceType, name: string): KubeStatusError =>
  new KubeStatusError(failure(404, "NotFound", `${qualified(rt)} "${name}" not found`, { name, group: rt.group, kind: rt.resource }));
const errAlreadyExists = (rt: ResourceType, name: string): KubeStatusError =>
  new KubeStatusError(failure(409, "AlreadyExists", `${qualified(rt)} "${name}" already exists`, { name, group: rt.group, kind: rt.resource }));
const errConflict = (rt: ResourceType, name: string, why = OPTIMISTIC_LOCK): KubeStatusError =>
  new KubeStatusError(failure(409, "Conflict", `Operation cannot be fulfilled on ${qualified(rt)} "${name}": ${why}`, { name, group: rt.group, kind: rt.resource }));
const errBadRequest = (message: string): KubeStatusError => new KubeStatusError(failure(400, "BadRequest", message));
const errInvalid = (rt: ResourceType, name: string, fieldPath: string, detail: string): KubeStatusError =>
  new KubeStatusError(
    failure(422, "Invalid", `${qualified(rt)} "${name}" is invalid: ${fieldPath}: ${detail}`, {
      name,
      group: rt.group,
      kind: rt.resource,
      causes: [{ reason: "FieldValueInvalid", message: detail, field: fieldPath }],
    }),
  );
const NOT_FOUND_GENERIC = failure(404, "NotFound", "the server could not find the requested resource", {});
const UNAUTHORIZED = failure(401, "Unauthorized", "Unauthorized");
const CONTINUE_EXPIRED =
  "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

// ───────────────────────────── selectors ─────────────────────────────

type LabelRequirement =
  | { readonly key: string; readonly op: "exists" | "!exists" }
  | { readonly key: string; readonly op: "=" | "!=" | "in" | "notin" | ">" | "<"; readonly values: readonly string[] };

/** Parses a label selector as k8s.io/apimachinery/pkg/labels.Parse does; a syntax error is a 400. */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const s = selector;
  const out: LabelRequirement[] = [];
  let i = 0;
  const fail = (expected: string): never => {
    const found = i < s.length ? `'${s[i]}'` : "end of string";
    throw errBadRequest(`unable to parse requirement: found ${found}, expected: ${expected}`);
  };
  const ws = (): void => {
    while (i < s.length && /\s/.test(s[i] ?? "")) i++;
  };
  const word = (re: RegExp): string => {
    const m = re.exec(s.slice(i));
    const w = m?.[0] ?? "";
    i += w.length;
    return w;
  };
  const KEY = /^[A-Za-z0-9._/-]+/;
  const VALUE = /^[A-Za-z0-9._-]*/;
  ws();
  if (i >= s.length) return out;
  for (;;) {
    ws();
    if (s[i] === "!") {
      i++;
      ws();
      const key = word(KEY);
      if (key === "") fail("identifier");
      out.push({ key, op: "!exists" });
    } else {
      const key = word(KEY);
      if (key === "") fail("identifier");
      ws();
      if (i >= s.length || s[i] === ",") {
        out.push({ key, op: "exists" });
      } else if (s.startsWith("!=", i) || s.startsWith("==", i) || s[i] === "=" || s[i] === ">" || s[i] === "<") {
        const op = s.startsWith("!=", i) ? "!=" : s[i] === ">" ? ">" : s[i] === "<" ? "<" : "=";
        i += s.startsWith("!=", i) || s.startsWith("==", i) ? 2 : 1;
        ws();
        const value = word(VALUE);
        if ((op === ">" || op === "<") && !/^-?\d+$/.test(value)) fail("integer");
        out.push({ key, op, values: [value] });
      } else if (/^(in|notin)[\s(]/.test(s.slice(i))) {
        const op = s.startsWith("notin", i) ? "notin" : "in";
        i += op.length;
        ws();
        if (s[i] !== "(") fail("'('");
        i++;
        const values: string[] = [];
        for (;;) {
          ws();
          values.push(word(VALUE));
          ws();
          if (s[i] === ",") {
            i++;
            continue;
          }
          if (s[i] === ")") {
            i++;
            break;
          }
          fail("',' or ')'");
        }
        out.push({ key, op, values });
      } else {
        fail("'=', '!=', '==', 'in', notin'");
      }
    }
    ws();
    if (i >= s.length) return out;
    if (s[i] !== ",") fail("',' or 'end of string'");
    i++;
  }
}

function labelsMatch(reqs: readonly LabelRequirement[], labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case "exists":
        return has;
      case "!exists":
        return !has;
      case "=":
        return has && v === r.values[0];
      case "!=":
        return !has || v !== r.values[0];
      case "in":
        return has && r.values.includes(v ?? "");
      case "notin":
        return !has || !r.values.includes(v ?? "");
      case ">":
      case "<": {
        if (!has || !/^-?\d+$/.test(v ?? "")) return false;
        const a = Number(v);
        const b = Number(r.values[0]);
        return r.op === ">" ? a > b : a < b;
      }
    }
  });
}

interface FieldRequirement {
  readonly get: FieldGetter;
  readonly op: "=" | "!=";
  readonly value: string;
}

/** Parses a field selector (`a=b,c!=d`); a field the resource does not index is a 400, as on the real server. */
export function parseFieldSelector(rt: ResourceType, selector: string): FieldRequirement[] {
  if (selector.trim() === "") return [];
  return selector.split(",").map((term) => {
    const m = /^([^=!]+)(!=|==|=)(.*)$/.exec(term.trim());
    if (m === null) throw errBadRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const key = (m[1] ?? "").trim();
    const get =
      key === "metadata.name" ? field("metadata.name") : key === "metadata.namespace" ? field("metadata.namespace") : rt.fields?.[key];
    if (get === undefined) throw errBadRequest(`field label not supported: ${key}`);
    return { get, op: m[2] === "!=" ? "!=" : "=", value: (m[3] ?? "").trim() };
  });
}

const fieldsMatch = (reqs: readonly FieldRequirement[], o: KubeObject): boolean =>
  reqs.every((r) => (r.op === "=" ? r.get(o) === r.value : r.get(o) !== r.value));

// ───────────────────────────── object store ─────────────────────────────

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** One write, as kept for watch replay. `object` is the state after it (for DELETED: the last state, with the deletion's RV). */
interface Change {
  readonly type: WatchEventType;
  readonly rv: number;
  readonly rt: ResourceType;
  readonly object: KubeObject;
  readonly previous: KubeObject | undefined;
}

/** A paged list's view of one resource at one resourceVersion (what etcd's MVCC gives the real server). */
interface Snapshot {
  readonly rt: ResourceType;
  readonly rv: number;
  readonly objects: readonly KubeObject[];
}

const keyOf = (ns: string | undefined, name: string): string => `${ns ?? ""}/${name}`;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
/** etcd's order: by the key "<namespace>/<name>" as a string (so "a-b/x" sorts before "a/y"). */
const byKey = (a: KubeObject, b: KubeObject): number => {
  const ak = keyOf(a.metadata.namespace, a.metadata.name ?? "");
  const bk = keyOf(b.metadata.namespace, b.metadata.name ?? "");
  return ak < bk ? -1 : ak > bk ? 1 : 0;
};

/** Whether two stored states differ other than in their resourceVersion (a no-op update keeps the RV, as the real server does). */
function sameState(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject): string => JSON.stringify({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
  return strip(a) === strip(b);
}

/**
 * Objects by resource and namespace/name, one global resourceVersion, and the
 * change history watches replay from. Stored objects are never mutated: every
 * write stores a new one, so snapshots and history can share references.
 */
class ObjectStore {
  private rv: number;
  /** Watches from an RV below this (and continue tokens from before it) get 410 Expired. */
  private compactedRv: number;
  private readonly buckets = new Map<ResourceType, Map<string, KubeObject>>();
  private readonly history: Change[] = [];

  constructor(
    initialRv: number,
    private readonly historyLimit: number,
    private readonly now: () => Date,
    private readonly onChange: (c: Change) => void,
  ) {
    this.rv = initialRv;
    this.compactedRv = initialRv;
  }

  get resourceVersion(): number {
    return this.rv;
  }
  get compactedResourceVersion(): number {
    return this.compactedRv;
  }

  private bucket(rt: ResourceType): Map<string, KubeObject> {
    let b = this.buckets.get(rt);
    if (b === undefined) this.buckets.set(rt, (b = new Map()));
    return b;
  }

  get(rt: ResourceType, ns: string | undefined, name: string): KubeObject | undefined {
    return this.bucket(rt).get(keyOf(rt.namespaced ? ns : undefined, name));
  }

  /** Current objects of a resource, sorted as etcd lists them. */
  all(rt: ResourceType): KubeObject[] {
    return [...this.bucket(rt).values()].sort(byKey);
  }

  /** Stamps what the server owns, normalises apiVersion/kind/namespace; returns a fresh object. */
  private prepare(rt: ResourceType, input: KubeObject, ns: string | undefined): KubeObject {
    const o = clone(input);
    o.apiVersion = apiVersionOf(rt);
    o.kind = rt.kind;
    o.metadata = o.metadata ?? {};
    if (rt.namespaced) o.metadata.namespace = ns ?? o.metadata.namespace ?? "default";
    else delete o.metadata.namespace;
    return o;
  }

  create(rt: ResourceType, input: KubeObject, ns?: string): KubeObject {
    const o = this.prepare(rt, input, ns);
    const m = o.metadata;
    if ((m.name === undefined || m.name === "") && m.generateName !== undefined && m.generateName !== "") {
      m.name = m.generateName + randomBytes(4).toString("hex").slice(0, 5);
    }
    if (m.name === undefined || m.name === "") throw errInvalid(rt, "", "metadata.name", "Required value: name or generateName is required");
    if (this.get(rt, m.namespace, m.name) !== undefined) throw errAlreadyExists(rt, m.name);
    m.uid ??= randomUUID();
    m.creationTimestamp ??= rfc3339(this.now());
    m.generation ??= 1;
    return this.commit("ADDED", rt, o, undefined);
  }

  /**
   * Replaces an object. With `checkRv` (API writes) the resource's real update
   * strategy applies: a stale RV is 409, a missing one 422 where the
   * resource demands it, a missing object 404 unless it may be created by PUT.
   */
  update(rt: ResourceType, input: KubeObject, ns: string | undefined, checkRv: boolean): { object: KubeObject; created: boolean } {
    const o = this.prepare(rt, input, ns);
    const m = o.metadata;
    const name = m.name ?? "";
    const old = this.get(rt, m.namespace, name);
    if (old === undefined) {
      // Test-side updates never create; API PUTs do where the resource allows it.
      if (!checkRv || rt.allowCreateOnUpdate !== true) throw errNotFound(rt, name);
      delete m.resourceVersion;
      return { object: this.create(rt, o, m.namespace), created: true };
    }
    if (checkRv) {
      if (m.resourceVersion === undefined || m.resourceVersion === "") {
        if (rt.allowUnconditionalUpdate === false) throw errInvalid(rt, name, "metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update");
      } else if (m.resourceVersion !== old.metadata.resourceVersion) {
        throw errConflict(rt, name);
      }
      if (m.uid !== undefined && m.uid !== "" && m.uid !== old.metadata.uid) {
        throw errConflict(rt, name, `Precondition failed: UID in precondition: ${m.uid}, UID in object meta: ${old.metadata.uid ?? ""}`);
      }
    }
    m.uid = old.metadata.uid;
    m.creationTimestamp = old.metadata.creationTimestamp;
    m.resourceVersion = old.metadata.resourceVersion;
    const oldGen = old.metadata.generation ?? 1;
    m.generation = JSON.stringify(o["spec"]) === JSON.stringify(old["spec"]) ? oldGen : oldGen + 1;
    if (sameState(o, old)) return { object: old, created: false };
    return { object: this.commit("MODIFIED", rt, o, old), created: false };
  }

  delete(rt: ResourceType, ns: string | undefined, name: string, pre?: { uid?: string; resourceVersion?: string }): KubeObject {
    const old = this.get(rt, ns, name);
    if (old === undefined) throw errNotFound(rt, name);
    if (pre?.uid !== undefined && pre.uid !== old.metadata.uid) {
      throw errConflict(rt, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid ?? ""}`);
    }
    if (pre?.resourceVersion !== undefined && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw errConflict(
        rt,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion ?? ""}`,
      );
    }
    const last = clone(old);
    return this.commit("DELETED", rt, last, old);
  }

  private commit(type: WatchEventType, rt: ResourceType, o: KubeObject, previous: KubeObject | undefined): KubeObject {
    this.rv += 1;
    o.metadata.resourceVersion = String(this.rv);
    const key = keyOf(o.metadata.namespace, o.metadata.name ?? "");
    if (type === "DELETED") this.bucket(rt).delete(key);
    else this.bucket(rt).set(key, o);
    const change: Change = { type, rv: this.rv, rt, object: o, previous };
    this.history.push(change);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRv = Math.max(this.compactedRv, dropped[dropped.length - 1]?.rv ?? 0);
    }
    this.onChange(change);
    return o;
  }

  /** Forgets history up to `rv` (default: now): older RVs become "too old". */
  compact(rv = this.rv): void {
    this.compactedRv = Math.max(this.compactedRv, Math.min(rv, this.rv));
    const keep = this.history.findIndex((c) => c.rv > this.compactedRv);
    this.history.splice(0, keep === -1 ? this.history.length : keep);
  }

  /** Changes after `rv` (caller checked it is not compacted away). */
  since(rv: number): Change[] {
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.history[mid]?.rv ?? 0) <= rv) lo = mid + 1;
      else hi = mid;
    }
    return this.history.slice(lo);
  }
}

// ───────────────────────────── public fake API ─────────────────────────────

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection";

/** One HTTP request the fake received; `status` is filled in when it is answered. */
export interface KubeRequest {
  readonly seq: number;
  readonly method: string;
  /** The URL path, e.g. "/api/v1/namespaces/default/pods/web-1/log". */
  readonly path: string;
  /** Query parameters (the first value of each). */
  readonly query: Readonly<Record<string, string>>;
  /** The Kubernetes verb (watch for `?watch=true`), undefined for discovery and unknown paths. */
  readonly verb: Verb | undefined;
  /** Plural resource name ("pods"), undefined outside resource paths. */
  readonly resource: string | undefined;
  readonly group: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  /** "log" for pod logs. */
  readonly subresource: string | undefined;
  /** HTTP status answered (200 for a watch once it streams); undefined while pending or when dropped. */
  status: number | undefined;
  /** The fault that answered it, if one did. */
  fault: "fail" | "drop" | "forbid" | undefined;
}

/**
 * Which requests a fault (or `count`) applies to. A string matches the URL
 * path exactly or as a prefix ending at a "/" ("/api/v1/namespaces/default/pods"
 * matches the list, each pod and their logs); a RegExp is tested against the
 * path; an object requires all of its given criteria; a function decides.
 */
export type RequestMatch =
  | string
  | RegExp
  | ((req: KubeRequest) => boolean)
  | {
      readonly method?: string | readonly string[];
      readonly verb?: Verb | readonly Verb[];
      /** Plural ("pods") or Kind ("Pod"). */
      readonly resource?: string | readonly string[];
      readonly namespace?: string;
      readonly name?: string;
      /** "log" for pod logs; `null` means "no subresource". */
      readonly subresource?: string | null;
      readonly path?: string | RegExp;
    };

export interface FaultHandle {
  /** Requests it has applied to so far. */
  readonly hits: number;
  remove(): void;
}

export interface HangHandle extends FaultHandle {
  /** Requests currently held. */
  readonly waiting: number;
  /** Lets held requests (and later ones) proceed normally, and removes the fault. */
  release(): void;
}

/** Where a log belongs. `previous` = the last terminated instance (`?previous=true`, or a crash-looping container's current logs). */
export interface LogTarget {
  readonly namespace?: string;
  readonly pod: string;
  readonly container: string;
  readonly previous?: boolean;
}

/** One log line with its own timestamp (for `timestamps` and `sinceSeconds`). */
export interface LogLine {
  readonly time: Time;
  readonly line: string;
}

export interface WatchInfo {
  readonly resource: string;
  readonly group: string;
  readonly namespace: string | undefined;
  readonly labelSelector: string | undefined;
  readonly fieldSelector: string | undefined;
  readonly bookmarks: boolean;
  /** The resourceVersion it asked to start from ("" for none). */
  readonly resourceVersion: string;
  readonly request: KubeRequest;
}

export interface KubeFakeOptions {
  /** Bearer token requests must carry (401 otherwise); null accepts anything. Default "kubecano-fake-token". */
  readonly token?: string | null;
  /** The user named in 403 messages from `forbid()`. Default "system:serviceaccount:kubecano:kubecano". */
  readonly user?: string;
  /** The first resourceVersion is this + 1. Default 1000 (so RVs grow a digit in long runs: they are opaque strings). */
  readonly initialResourceVersion?: number;
  /** Changes kept for watch replay; older ones are compacted away (410). Default 100000. */
  readonly historyLimit?: number;
  /** Server-side end of watches that give no timeoutSeconds (the real server picks 30–60 min). Default: never. */
  readonly watchTimeoutSeconds?: number;
  /** Sends a BOOKMARK to every watch that allows them at this interval. Default: only on `bookmark()`. */
  readonly bookmarkIntervalMs?: number;
  /** Clock for creationTimestamp, plain-string log lines and sinceSeconds. Default: the wall clock. */
  readonly now?: () => Date;
  /** Extra resources to serve (e.g. a CRD). */
  readonly resources?: readonly ResourceType[];
  /** Objects to start with. */
  readonly objects?: readonly KubeObject[];
}

export interface KubeFake {
  /** "http://127.0.0.1:PORT". */
  readonly url: string;
  readonly token: string | null;
  /** A kubeconfig (context "fake", token user, insecure-skip-tls-verify so client-node accepts http). */
  kubeconfigYaml(opts?: { namespace?: string }): string;
  /** Writes `kubeconfigYaml()` to `dir/kubeconfig` (default: a temp dir removed by close()) and returns the path. */
  kubeconfigPath(dir?: string): string;

  // ── store ──
  /** Creates an object (server-owned metadata filled in); throws KubeStatusError if it exists. Returns the stored copy. */
  add<T extends KubeObject>(obj: T): T;
  /** Creates or replaces. */
  apply<T extends KubeObject>(obj: T): T;
  /** Replaces an existing object (no resourceVersion check); a watch sees MODIFIED. */
  update<T extends KubeObject>(obj: T): T;
  /** Applies `fn` to a copy of the stored object and stores the result. */
  modify(kind: string, namespace: string | undefined, name: string, fn: (o: KubeObject) => void): KubeObject;
  /** Deletes; a watch sees DELETED. Returns the last state. */
  remove(kind: string, namespace: string | undefined, name: string): KubeObject;
  /** `kind` is a Kind ("Pod"), plural ("pods"), singular or short name; copies are returned. */
  get(kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** All objects of a kind (in one namespace if given), in the server's list order. */
  list(kind: string, namespace?: string): KubeObject[];
  /** The current global resourceVersion. */
  readonly resourceVersion: string;

  // ── logs ──
  setLog(target: LogTarget, content: string | readonly LogLine[]): void;

  // ── watches ──
  readonly watches: readonly WatchInfo[];
  /** Resolves once at least `count` matching watches are open (default 1); rejects after `timeoutMs` (default 5 s). */
  waitForWatches(count?: number, match?: RequestMatch, timeoutMs?: number): Promise<void>;
  /** Makes RVs up to `rv` (default: the current one) too old: watches and continue tokens from before get 410. */
  compact(rv?: string | number): void;
  /** Sends a BOOKMARK (current RV) to every open watch that allows bookmarks; returns how many got one. */
  bookmark(): number;
  /** Ends every open watch: abruptly (socket destroyed, default) or `graceful` (stream ended, as on timeout). Returns how many. */
  dropWatches(opts?: { graceful?: boolean }): number;
  /** Sends every open watch an ERROR 410 Expired and ends it (a watch cache that fell behind). Returns how many. */
  expireWatches(): number;
  /**
   * Makes every open watch go silent without ending (a stuck stream, as
   * client-node issues #958 and #364 describe): it gets no more events or
   * bookmarks and its timeoutSeconds no longer ends it. Returns how many.
   * Watches opened afterwards are normal.
   */
  stallWatches(): number;

  // ── faults ── (checked on arrival, in the order added: hang, delay, drop, fail)
  /** Delays the handling of every matching request by `ms`. */
  delay(ms: number, match?: RequestMatch): FaultHandle;
  /** Answers the next `count` (default 1) matching requests with a `status` Status (429 carries Retry-After). */
  failNext(status: number, match?: RequestMatch, count?: number, opts?: { message?: string; retryAfterSeconds?: number }): FaultHandle;
  /** Holds matching requests unanswered until `release()` (or close()). */
  hang(match?: RequestMatch): HangHandle;
  /** Destroys the connection of the next `count` (default 1) matching requests without an answer. */
  dropNext(match?: RequestMatch, count?: number): FaultHandle;
  /** Answers every matching request 403 Forbidden as RBAC does ("User ... cannot list resource ..."). */
  forbid(match?: RequestMatch): FaultHandle;
  /** Removes every fault and releases held requests. */
  clearFaults(): void;

  // ── requests ──
  /** Every request received, in order. */
  readonly requests: readonly KubeRequest[];
  /** How many requests matched (all when no match). */
  count(match?: RequestMatch): number;
  clearRequests(): void;

  /** Ends watches, drops held requests, stops the server, removes the temp kubeconfig dir. */
  close(): Promise<void>;
}

// ───────────────────────────── internals ─────────────────────────────

interface Fault {
  readonly match: RequestMatch | undefined;
  readonly action:
    | { kind: "delay"; ms: number }
    | { kind: "fail"; status: number; message: string | undefined; retryAfterSeconds: number }
    | { kind: "hang" }
    | { kind: "drop" }
    | { kind: "forbid" };
  remaining: number;
  hits: number;
  removed: boolean;
}

interface Watcher {
  readonly rt: ResourceType;
  readonly namespace: string | undefined;
  readonly labels: readonly LabelRequirement[];
  readonly fields: readonly FieldRequirement[];
  readonly res: ServerResponse;
  readonly info: WatchInfo;
  timer: NodeJS.Timeout | undefined;
  /** stallWatches(): open, but nothing is written to it any more. */
  stalled?: boolean;
}

interface StoredLog {
  /** Per line: the text, the timestamp as printed, and its epoch ms. */
  readonly lines: readonly { readonly text: string; readonly stamp: string; readonly ms: number }[];
}

/** What parseRequest makes of a URL. */
type Route =
  | { kind: "discovery"; what: "version" | "api" | "apis" | "group"; group: string; version: string }
  | {
      kind: "resource";
      rt: ResourceType;
      namespace: string | undefined;
      name: string | undefined;
      subresource: string | undefined;
      verb: Verb | undefined;
    }
  | { kind: "unknown" };

const MAX_BODY_BYTES = 3 * 1024 * 1024; // the real server's request limit
const SNAPSHOT_LIMIT = 256;

function parseBool(v: string | undefined): boolean {
  return v !== undefined && /^(1|t|T|true|TRUE|True)$/.test(v);
}

/** Go's RFC 3339 (seconds) as the server prints metav1.Time. */
export function rfc3339(t: Time): string {
  if (typeof t === "string") return t;
  return t.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** metav1.MicroTime as the server prints it (Lease times, Event eventTime). */
export function microTime(t: Time): string {
  if (typeof t === "string") return t;
  return t.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** RFC 3339 with nanoseconds, trailing zeros trimmed, as the kubelet prefixes `timestamps=true` lines. */
function rfc3339Nano(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, f: string) => {
    const t = f.replace(/0+$/, "");
    return t === "" ? "Z" : `.${t}Z`;
  });
}

function readBody(req: IncomingMessage): Promise<Buffer | "too-large"> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(tooLarge ? "too-large" : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export async function startKubeFake(opts: KubeFakeOptions = {}): Promise<KubeFake> {
  const token = opts.token === undefined ? "kubecano-fake-token" : opts.token;
  const user = opts.user ?? "system:serviceaccount:kubecano:kubecano";
  const now = opts.now ?? ((): Date => new Date());
  const resources: ResourceType[] = [...RESOURCES, ...(opts.resources ?? [])];

  const requests: KubeRequest[] = [];
  const watchers = new Set<Watcher>();
  const watchWaiters = new Set<() => void>();
  const faults: Fault[] = [];
  const held = new Set<{ proceed: (go: boolean) => void; fault: Fault }>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const logs = new Map<string, StoredLog>();
  const snapshots = new Map<string, Snapshot>();
  let seq = 0;
  let closing = false;
  let tempDir: string | undefined;

  const store = new ObjectStore(opts.initialResourceVersion ?? 1000, opts.historyLimit ?? 100_000, now, (c) => {
    for (const w of watchers) deliver(w, c);
  });

  // ── resource lookup ──

  function resolveKind(kind: string): ResourceType {
    const lower = kind.toLowerCase();
    const [plural, group] = lower.includes(".") ? [lower.slice(0, lower.indexOf(".")), lower.slice(lower.indexOf(".") + 1)] : [lower, undefined];
    const rt =
      resources.find((r) => r.kind === kind) ??
      resources.find(
        (r) =>
          (group === undefined || r.group === group) &&
          (r.resource === plural || r.singular === plural || r.kind.toLowerCase() === plural || (r.shortNames ?? []).includes(plural)),
      );
    if (rt === undefined) throw new Error(`kube fake: unknown kind or resource "${kind}"`);
    return rt;
  }

  function resourceOfObject(o: KubeObject): ResourceType {
    const rt = resources.find((r) => r.kind === o.kind && apiVersionOf(r) === o.apiVersion);
    if (rt === undefined) throw new Error(`kube fake: no resource serves ${o.apiVersion} ${o.kind}`);
    return rt;
  }

  // ── request matching ──

  function matches(m: RequestMatch | undefined, r: KubeRequest): boolean {
    if (m === undefined) return true;
    if (typeof m === "string") return r.path === m || r.path.startsWith(m.endsWith("/") ? m : `${m}/`);
    if (m instanceof RegExp) return m.test(r.path);
    if (typeof m === "function") return m(r);
    const oneOf = <T>(want: T | readonly T[] | undefined, got: T | undefined): boolean =>
      want === undefined || (Array.isArray(want) ? (want as readonly T[]).includes(got as T) : want === got);
    if (!oneOf(m.method, r.method)) return false;
    if (!oneOf(m.verb, r.verb)) return false;
    if (m.resource !== undefined) {
      const wanted = (Array.isArray(m.resource) ? m.resource : [m.resource]) as readonly string[];
      if (!wanted.some((w) => w === r.resource || resources.find((rt) => rt.kind === w)?.resource === r.resource)) return false;
    }
    if (m.namespace !== undefined && m.namespace !== r.namespace) return false;
    if (m.name !== undefined && m.name !== r.name) return false;
    if (m.subresource !== undefined && (m.subresource ?? undefined) !== r.subresource) return false;
    if (m.path !== undefined && !(typeof m.path === "string" ? r.path === m.path : m.path.test(r.path))) return false;
    return true;
  }

  function addFault(match: RequestMatch | undefined, action: Fault["action"], remaining: number): Fault {
    const f: Fault = { match, action, remaining, hits: 0, removed: false };
    faults.push(f);
    return f;
  }

  function removeFault(f: Fault): void {
    f.removed = true;
    const i = faults.indexOf(f);
    if (i >= 0) faults.splice(i, 1);
  }

  const handleOf = (f: Fault): FaultHandle => ({
    get hits() {
      return f.hits;
    },
    remove: () => removeFault(f),
  });

  /** The first live fault of `kind` matching `r`, consuming one use. */
  function takeFault(kind: Fault["action"]["kind"], r: KubeRequest): Fault | undefined {
    for (const f of faults) {
      if (f.removed || f.action.kind !== kind || f.remaining <= 0 || !matches(f.match, r)) continue;
      f.remaining -= 1;
      f.hits += 1;
      if (f.remaining <= 0) removeFault(f);
      return f;
    }
    return undefined;
  }

  // ── routing ──

  function parseRequest(method: string, path: string, query: Readonly<Record<string, string>>): Route {
    let segs: string[];
    try {
      segs = path.split("/").filter((s) => s !== "").map(decodeURIComponent);
    } catch {
      return { kind: "unknown" };
    }
    if (segs.length === 1 && segs[0] === "version") return { kind: "discovery", what: "version", group: "", version: "" };
    let group: string;
    let version: string | undefined;
    let rest: string[];
    if (segs[0] === "api") {
      if (segs.length === 1) return { kind: "discovery", what: "api", group: "", version: "" };
      group = "";
      version = segs[1];
      rest = segs.slice(2);
    } else if (segs[0] === "apis") {
      if (segs.length === 1) return { kind: "discovery", what: "apis", group: "", version: "" };
      group = segs[1] ?? "";
      version = segs[2];
      rest = segs.slice(3);
    } else {
      return { kind: "unknown" };
    }
    if (version === undefined) return { kind: "unknown" };
    if (!resources.some((r) => r.group === group && r.version === version)) return { kind: "unknown" };
    if (rest.length === 0) return { kind: "discovery", what: "group", group, version };
    let legacyWatch = false;
    if (rest[0] === "watch") {
      legacyWatch = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    // /namespaces/{ns}/{resource}/... — but /api/v1/namespaces/{name} and its status/finalize are the Namespace itself.
    if (rest[0] === "namespaces" && rest.length >= 3 && !(group === "" && rest.length === 3 && (rest[2] === "status" || rest[2] === "finalize"))) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    if (rest.length > 3) return { kind: "unknown" };
    const [resource, name, subresource] = rest;
    const rt = resources.find((r) => r.group === group && r.version === version && r.resource === resource);
    if (rt === undefined) return { kind: "unknown" };
    if (namespace !== undefined && !rt.namespaced) return { kind: "unknown" };
    if (rt.namespaced && namespace === undefined && name !== undefined) return { kind: "unknown" };
    const watch = legacyWatch || parseBool(query["watch"]);
    let verb: Verb | undefined;
    switch (method) {
      case "GET":
        verb = watch ? "watch" : name === undefined ? "list" : "get";
        break;
      case "POST":
        verb = name === undefined ? "create" : undefined;
        break;
      case "PUT":
        verb = name === undefined ? undefined : "update";
        break;
      case "PATCH":
        verb = name === undefined ? undefined : "patch";
        break;
      case "DELETE":
        verb = name === undefined ? "deletecollection" : "delete";
        break;
    }
    return { kind: "resource", rt, namespace, name, subresource, verb };
  }

  // ── answering ──

  function sendJson(res: ServerResponse, rec: KubeRequest, code: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers });
    res.end(text);
    rec.status = code;
  }

  function sendStatus(res: ServerResponse, rec: KubeRequest, s: KubeStatus, headers: Record<string, string> = {}): void {
    sendJson(res, rec, s.code, s, headers);
  }

  function sendText(res: ServerResponse, rec: KubeRequest, text: string): void {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(200, { "content-type": "text/plain", "content-length": String(Buffer.byteLength(text)) });
    res.end(text);
    rec.status = 200;
  }

  /** RBAC's refusal text (plugin/pkg/auth/authorizer/rbac + endpoints/handlers/responsewriters.ForbiddenStatus). */
  function forbiddenStatus(rec: KubeRequest): KubeStatus {
    const resource = rec.resource ?? "";
    const res = rec.subresource !== undefined ? `${resource}/${rec.subresource}` : resource;
    const verb = rec.verb ?? rec.method.toLowerCase();
    const what = rec.name !== undefined ? `${rec.group ? `${resource}.${rec.group}` : resource} "${rec.name}"` : rec.group ? `${resource}.${rec.group}` : resource;
    const scope = rec.namespace !== undefined ? `in the namespace "${rec.namespace}"` : "at the cluster scope";
    const message = rec.resource === undefined
      ? `forbidden: User "${user}" cannot ${verb} path "${rec.path}"`
      : `${what} is forbidden: User "${user}" cannot ${verb} resource "${res}" in API group "${rec.group ?? ""}" ${scope}`;
    const details: KubeStatus["details"] = { kind: resource };
    if (rec.group) details.group = rec.group;
    if (rec.name !== undefined) details.name = rec.name;
    return failure(403, "Forbidden", message, details);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = req.method ?? "GET";
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) if (!Object.hasOwn(query, k)) query[k] = v;
    const route = parseRequest(method, url.pathname, query);
    const rec: KubeRequest = {
      seq: ++seq,
      method,
      path: url.pathname,
      query,
      verb: route.kind === "resource" ? route.verb : undefined,
      resource: route.kind === "resource" ? route.rt.resource : undefined,
      group: route.kind === "resource" ? route.rt.group : undefined,
      namespace: route.kind === "resource" ? route.namespace : undefined,
      name: route.kind === "resource" ? route.name : undefined,
      subresource: route.kind === "resource" ? route.subresource : undefined,
      status: undefined,
      fault: undefined,
    };
    requests.push(rec);

    const body = await readBody(req);

    // Faults model trouble between client and server, so they come before auth.
    const hung = takeFault("hang", rec);
    if (hung !== undefined) {
      const go = await new Promise<boolean>((proceed) => held.add({ proceed, fault: hung }));
      if (!go) return;
    }
    for (const f of [...faults]) {
      if (f.action.kind !== "delay" || f.removed || !matches(f.match, rec)) continue;
      f.hits += 1;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          timers.delete(t);
          resolve();
        }, (f.action as { ms: number }).ms);
        timers.add(t);
      });
      if (closing) return;
    }
    if (takeFault("drop", rec) !== undefined) {
      rec.fault = "drop";
      res.socket?.destroy();
      return;
    }
    const failed = takeFault("fail", rec);
    if (failed !== undefined && failed.action.kind === "fail") {
      const a = failed.action;
      rec.fault = "fail";
      const reason = REASONS[a.status] ?? "Unknown";
      const message = a.message ?? (a.status === 429 ? "Too many requests, please try again later." : `injected failure (${reason})`);
      const details: KubeStatus["details"] = a.status === 429 ? { retryAfterSeconds: a.retryAfterSeconds } : {};
      sendStatus(res, rec, failure(a.status, reason, message, details), a.status === 429 ? { "retry-after": String(a.retryAfterSeconds) } : {});
      return;
    }

    if (token !== null && req.headers.authorization !== `Bearer ${token}`) return sendStatus(res, rec, UNAUTHORIZED);
    if (takeFault("forbid", rec) !== undefined) {
      rec.fault = "forbid";
      return sendStatus(res, rec, forbiddenStatus(rec));
    }
    if (body === "too-large") return sendStatus(res, rec, failure(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728"));

    try {
      switch (route.kind) {
        case "unknown":
          return sendStatus(res, rec, NOT_FOUND_GENERIC);
        case "discovery":
          if (method !== "GET") return sendStatus(res, rec, failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"));
          return sendJson(res, rec, 200, discovery(route, req.headers.host ?? "127.0.0.1"));
        case "resource":
          return handleResource(route, rec, query, body, res);
      }
    } catch (e) {
      if (e instanceof KubeStatusError) return sendStatus(res, rec, e.status);
      return sendStatus(res, rec, failure(500, "InternalError", `Internal error occurred: ${e instanceof Error ? e.message : String(e)}`));
    }
  }

  function handleResource(route: Extract<Route, { kind: "resource" }>, rec: KubeRequest, query: Record<string, string>, body: Buffer, res: ServerResponse): void {
    const { rt, namespace, name, subresource, verb } = route;
    if (subresource !== undefined) {
      if (subresource === "log" && rt.resource === "pods" && verb === "get" && name !== undefined) return handleLog(namespace ?? "", name, query, rec, res);
      return sendStatus(res, rec, NOT_FOUND_GENERIC);
    }
    const notAllowed = (): void =>
      sendStatus(res, rec, failure(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (${verb ?? rec.method} ${qualified(rt)} is not implemented by the kube fake)`));
    switch (verb) {
      case "list":
        return sendJson(res, rec, 200, listResponse(rt, namespace, query));
      case "watch":
        return startWatch(rt, namespace, query, rec, res);
      case "get": {
        const o = store.get(rt, namespace, name ?? "");
        if (o === undefined) throw errNotFound(rt, name ?? "");
        return sendJson(res, rec, 200, o);
      }
      case "create": {
        const o = parseObject(body, rt);
        checkNamespace(o, namespace);
        return sendJson(res, rec, 201, store.create(rt, o, namespace));
      }
      case "update": {
        const o = parseObject(body, rt);
        checkNamespace(o, namespace);
        if ((o.metadata.name ?? "") !== name) {
          throw errBadRequest(`the name of the object (${o.metadata.name ?? ""}) does not match the name on the URL (${name ?? ""})`);
        }
        const { object, created } = store.update(rt, o, namespace, true);
        return sendJson(res, rec, created ? 201 : 200, object);
      }
      case "delete": {
        let pre: { uid?: string; resourceVersion?: string } | undefined;
        if (body.length > 0) {
          try {
            const opts = JSON.parse(body.toString("utf8")) as { preconditions?: { uid?: string; resourceVersion?: string } };
            pre = opts.preconditions ?? undefined;
          } catch {
            throw errBadRequest("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf");
          }
        }
        const last = store.delete(rt, namespace, name ?? "", pre ?? undefined);
        if (rt.returnDeletedObject === true) return sendJson(res, rec, 200, last);
        return sendJson(res, rec, 200, {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Success",
          details: { name: last.metadata.name, group: rt.group, kind: rt.resource, uid: last.metadata.uid },
        });
      }
      default:
        // PATCH and deletecollection: extension points.
        return notAllowed();
    }
  }

  function parseObject(body: Buffer, rt: ResourceType): KubeObject {
    let o: unknown;
    try {
      o = JSON.parse(body.toString("utf8"));
    } catch (e) {
      throw errBadRequest(`the object provided is unrecognized: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (o === null || typeof o !== "object" || Array.isArray(o)) throw errBadRequest("the object provided is unrecognized (must be a JSON object)");
    const obj = o as KubeObject;
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(rt)) {
      throw errBadRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(rt)})`);
    }
    if (obj.kind !== undefined && obj.kind !== rt.kind) throw errBadRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${rt.kind})`);
    obj.metadata = obj.metadata ?? {};
    return obj;
  }

  function checkNamespace(o: KubeObject, namespace: string | undefined): void {
    if (namespace !== undefined && o.metadata.namespace !== undefined && o.metadata.namespace !== "" && o.metadata.namespace !== namespace) {
      throw errBadRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
  }

  // ── lists ──

  function intParam(query: Record<string, string>, key: string): number | undefined {
    const v = query[key];
    if (v === undefined || v === "") return undefined;
    if (!/^-?\d+$/.test(v)) throw errBadRequest(`strconv.ParseInt: parsing "${v}": invalid syntax`);
    return Number(v);
  }

  function listResponse(rt: ResourceType, namespace: string | undefined, query: Record<string, string>): unknown {
    const labels = parseLabelSelector(query["labelSelector"] ?? "");
    const fields = parseFieldSelector(rt, query["fieldSelector"] ?? "");
    const limit = intParam(query, "limit") ?? 0;
    const token = query["continue"];

    let snap: Snapshot;
    let startAfter: string | undefined;
    if (token !== undefined && token !== "") {
      let decoded: { v?: string; rv?: number; start?: string; id?: string };
      try {
        decoded = JSON.parse(Buffer.from(token, "base64").toString("utf8")) as typeof decoded;
      } catch {
        throw errBadRequest("continue key is not valid: illegal base64 data");
      }
      if (decoded.v !== "meta.k8s.io/v1" || typeof decoded.rv !== "number" || typeof decoded.id !== "string") {
        throw errBadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
      }
      const found = snapshots.get(decoded.id);
      if (found === undefined || decoded.rv < store.compactedResourceVersion || found.rt !== rt) {
        throw new KubeStatusError(failure(410, "Expired", CONTINUE_EXPIRED));
      }
      snap = found;
      startAfter = decoded.start;
    } else {
      snap = { rt, rv: store.resourceVersion, objects: store.all(rt) };
    }

    const selected = snap.objects.filter(
      (o) => (namespace === undefined || o.metadata.namespace === namespace) && labelsMatch(labels, o.metadata.labels) && fieldsMatch(fields, o),
    );
    const from = startAfter === undefined ? 0 : selected.findIndex((o) => keyOf(o.metadata.namespace, o.metadata.name ?? "") > startAfter);
    const rest = from === -1 ? [] : selected.slice(from);
    const page = limit > 0 ? rest.slice(0, limit) : rest;
    const metadata: Record<string, unknown> = { resourceVersion: String(snap.rv) };
    if (limit > 0 && rest.length > page.length) {
      const last = page[page.length - 1];
      const id = randomBytes(8).toString("hex");
      snapshots.set(id, snap);
      while (snapshots.size > SNAPSHOT_LIMIT) snapshots.delete(snapshots.keys().next().value as string);
      metadata["continue"] = Buffer.from(
        JSON.stringify({ v: "meta.k8s.io/v1", rv: snap.rv, start: keyOf(last?.metadata.namespace, last?.metadata.name ?? ""), id }),
      ).toString("base64");
      // The real server counts what is left only for unfiltered lists.
      if (labels.length === 0 && fields.length === 0) metadata["remainingItemCount"] = rest.length - page.length;
    }
    return { kind: `${rt.kind}List`, apiVersion: apiVersionOf(rt), metadata, items: page };
  }

  // ── watches ──

  /** Whether an object passes a watch's namespace and selectors. */
  function inWatch(w: Watcher, o: KubeObject | undefined): boolean {
    return (
      o !== undefined &&
      (w.namespace === undefined || o.metadata.namespace === w.namespace) &&
      labelsMatch(w.labels, o.metadata.labels) &&
      fieldsMatch(w.fields, o)
    );
  }

  function writeEvent(w: Watcher, type: string, object: unknown): void {
    if (w.res.writableEnded || w.res.destroyed || w.stalled === true) return;
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  /**
   * What a watch sees of one change, as the apiserver's cacher decides it: an
   * object entering the selector is ADDED, leaving it is DELETED (its previous
   * state, stamped with the change's RV).
   */
  function deliver(w: Watcher, c: Change): void {
    if (c.rt !== w.rt) return;
    if (c.type === "ADDED") {
      if (inWatch(w, c.object)) writeEvent(w, "ADDED", c.object);
    } else if (c.type === "DELETED") {
      if (inWatch(w, c.object)) writeEvent(w, "DELETED", c.object);
    } else {
      const now = inWatch(w, c.object);
      const before = inWatch(w, c.previous);
      if (now && before) writeEvent(w, "MODIFIED", c.object);
      else if (now) writeEvent(w, "ADDED", c.object);
      else if (before && c.previous !== undefined) {
        writeEvent(w, "DELETED", { ...c.previous, metadata: { ...c.previous.metadata, resourceVersion: String(c.rv) } });
      }
    }
  }

  const bookmarkObject = (rt: ResourceType, annotations?: Record<string, string>): KubeObject => ({
    kind: rt.kind,
    apiVersion: apiVersionOf(rt),
    metadata: annotations === undefined ? { resourceVersion: String(store.resourceVersion) } : { resourceVersion: String(store.resourceVersion), annotations },
  });

  const expiredStatus = (rv: number): KubeStatus =>
    failure(410, "Expired", `too old resource version: ${rv} (${store.compactedResourceVersion})`);

  function startWatch(rt: ResourceType, namespace: string | undefined, query: Record<string, string>, rec: KubeRequest, res: ServerResponse): void {
    const labels = parseLabelSelector(query["labelSelector"] ?? "");
    const fields = parseFieldSelector(rt, query["fieldSelector"] ?? "");
    const timeoutSeconds = intParam(query, "timeoutSeconds") ?? opts.watchTimeoutSeconds;
    const rvParam = query["resourceVersion"] ?? "";
    let fromRv: number | undefined;
    if (rvParam !== "" && rvParam !== "0") {
      if (!/^\d+$/.test(rvParam)) throw errBadRequest(`resourceVersion: Invalid value: "${rvParam}": strconv.ParseUint: parsing "${rvParam}": invalid syntax`);
      fromRv = Number(rvParam);
    }
    const bookmarks = parseBool(query["allowWatchBookmarks"]);
    const info: WatchInfo = {
      resource: rt.resource,
      group: rt.group,
      namespace,
      labelSelector: query["labelSelector"],
      fieldSelector: query["fieldSelector"],
      bookmarks,
      resourceVersion: rvParam,
      request: rec,
    };
    const w: Watcher = { rt, namespace, labels, fields, res, info, timer: undefined };

    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache, private" });
    res.flushHeaders();
    rec.status = 200;

    if (fromRv !== undefined && fromRv < store.compactedResourceVersion) {
      // The real server answers 200 and sends the 410 as the stream's only event.
      writeEvent(w, "ERROR", expiredStatus(fromRv));
      res.end();
      return;
    }
    if (fromRv === undefined || parseBool(query["sendInitialEvents"])) {
      // No RV (or watch-list): the current state first, as synthetic ADDED events.
      for (const o of store.all(rt)) if (inWatch(w, o)) writeEvent(w, "ADDED", o);
      if (parseBool(query["sendInitialEvents"]) && bookmarks) writeEvent(w, "BOOKMARK", bookmarkObject(rt, { "k8s.io/initial-events-end": "true" }));
    } else {
      for (const c of store.since(fromRv)) deliver(w, c);
    }
    watchers.add(w);
    if (timeoutSeconds !== undefined && timeoutSeconds > 0) {
      w.timer = setTimeout(() => res.end(), timeoutSeconds * 1000);
    }
    res.on("close", () => {
      watchers.delete(w);
      if (w.timer !== undefined) clearTimeout(w.timer);
    });
    for (const notify of [...watchWaiters]) notify();
  }

  const bookmarkTimer =
    opts.bookmarkIntervalMs !== undefined && opts.bookmarkIntervalMs > 0 ? setInterval(() => sendBookmarks(), opts.bookmarkIntervalMs).unref() : undefined;

  function sendBookmarks(): number {
    let n = 0;
    for (const w of watchers) {
      if (!w.info.bookmarks || w.stalled === true) continue;
      writeEvent(w, "BOOKMARK", bookmarkObject(w.rt));
      n++;
    }
    return n;
  }

  // ── pod logs ──

  const logKey = (ns: string, pod: string, container: string, previous: boolean): string => `${ns}/${pod}/${container}/${previous ? "previous" : "current"}`;

  /**
   * GET .../pods/{name}/log, with the apiserver's container validation
   * (pkg/registry/core/pod/strategy.go LogLocation) and the kubelet's choice of
   * instance (pkg/kubelet/kubelet_pods.go validateContainerLogStatus): a
   * container that is not running but has a last terminated instance (a crash
   * loop) answers with that instance's logs, i.e. what `setLog(..., previous)`
   * holds. The kubelet's errors reach the client as 400 BadRequest.
   */
  function handleLog(ns: string, name: string, query: Record<string, string>, rec: KubeRequest, res: ServerResponse): void {
    const podsRt = resolveKind("pods");
    const p = store.get(podsRt, ns, name);
    if (p === undefined) throw errNotFound(podsRt, name);
    const spec = (p["spec"] ?? {}) as { containers?: { name: string }[]; initContainers?: { name: string }[]; ephemeralContainers?: { name: string }[]; nodeName?: string };
    const all = [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])].map((c) => c.name);
    let container = query["container"] ?? "";
    if (container === "") {
      const cs = spec.containers ?? [];
      if (cs.length === 1) container = cs[0]?.name ?? "";
      else if (cs.length === 0) throw errBadRequest(`a container name must be specified for pod ${name}`);
      else throw errBadRequest(`a container name must be specified for pod ${name}, choose one of: [${all.join(" ")}]`);
    } else if (!all.includes(container)) {
      throw errBadRequest(`container ${container} is not valid for pod ${name}`);
    }

    const tailLines = intParam(query, "tailLines");
    const limitBytes = intParam(query, "limitBytes");
    const sinceSeconds = intParam(query, "sinceSeconds");
    const invalid = (f: string, v: number, why: string): KubeStatusError =>
      new KubeStatusError(failure(422, "Invalid", `PodLogOptions "${name}" is invalid: ${f}: Invalid value: ${v}: ${why}`, { name, kind: "PodLogOptions" }));
    if (tailLines !== undefined && tailLines < 0) throw invalid("tailLines", tailLines, "must be greater than or equal to 0");
    if (limitBytes !== undefined && limitBytes < 1) throw invalid("limitBytes", limitBytes, "must be greater than 0");
    if (sinceSeconds !== undefined && sinceSeconds < 1) throw invalid("sinceSeconds", sinceSeconds, "must be greater than 0");

    // An unscheduled pod has no kubelet to ask: the apiserver answers an empty 200.
    if (spec.nodeName === undefined || spec.nodeName === "") return sendText(res, rec, "");

    const status = (p["status"] ?? {}) as Record<string, ContainerStatus[] | undefined>;
    const cs = [...(status["containerStatuses"] ?? []), ...(status["initContainerStatuses"] ?? []), ...(status["ephemeralContainerStatuses"] ?? [])].find(
      (s) => s.name === container,
    );
    if (cs === undefined) throw errBadRequest(`container "${container}" in pod "${name}" is not available`);
    const last = cs.lastState?.terminated;
    const st = cs.state ?? {};
    const hasId = (t: { containerID?: string } | undefined): boolean => t !== undefined && (t.containerID ?? "") !== "";
    let previous: boolean;
    if (parseBool(query["previous"])) {
      if (!hasId(last)) throw errBadRequest(`previous terminated container "${container}" in pod "${name}" not found`);
      previous = true;
    } else if (st.running !== undefined) {
      previous = false;
    } else if (st.terminated !== undefined) {
      if (hasId(st.terminated)) previous = false;
      else if (hasId(last)) previous = true;
      else throw errBadRequest(`container "${container}" in pod "${name}" is terminated`);
    } else if (last !== undefined) {
      if (!hasId(last)) throw errBadRequest(`container "${container}" in pod "${name}" is terminated`);
      previous = true;
    } else if (st.waiting !== undefined) {
      const reason = st.waiting.reason ?? "";
      if (reason === "ErrImagePull") throw errBadRequest(`container "${container}" in pod "${name}" is waiting to start: image can't be pulled`);
      if (reason === "ImagePullBackOff") throw errBadRequest(`container "${container}" in pod "${name}" is waiting to start: trying and failing to pull image`);
      throw errBadRequest(`container "${container}" in pod "${name}" is waiting to start: ${reason}`);
    } else {
      throw errBadRequest(`container "${container}" in pod "${name}" is waiting to start - no logs yet`);
    }

    // The kubelet seeks to the last tailLines first, then drops lines older than sinceSeconds, then caps bytes.
    let lines = logs.get(logKey(ns, name, container, previous))?.lines ?? [];
    if (tailLines !== undefined) lines = tailLines === 0 ? [] : lines.slice(-tailLines);
    if (sinceSeconds !== undefined) {
      const cutoff = now().getTime() - sinceSeconds * 1000;
      lines = lines.filter((l) => l.ms >= cutoff);
    }
    const timestamps = parseBool(query["timestamps"]);
    let out = Buffer.from(lines.map((l) => `${timestamps ? `${l.stamp} ` : ""}${l.text}\n`).join(""), "utf8");
    if (limitBytes !== undefined && out.length > limitBytes) out = out.subarray(0, limitBytes);
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(200, { "content-type": "text/plain", "content-length": String(out.length) });
    res.end(out);
    rec.status = 200;
  }

  // ── discovery ──

  function discovery(route: Extract<Route, { kind: "discovery" }>, host: string): unknown {
    switch (route.what) {
      case "version":
        return { major: "1", minor: "31", gitVersion: "v1.31.0-kubecano-fake", gitCommit: "fake", gitTreeState: "clean", goVersion: "go1.22.0", compiler: "gc", platform: "linux/amd64" };
      case "api":
        return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: host }] };
      case "apis": {
        const groups = new Map<string, string[]>();
        for (const r of resources) {
          if (r.group === "") continue;
          const vs = groups.get(r.group) ?? [];
          if (!vs.includes(r.version)) vs.push(r.version);
          groups.set(r.group, vs);
        }
        return {
          kind: "APIGroupList",
          apiVersion: "v1",
          groups: [...groups].map(([name, vs]) => ({
            name,
            versions: vs.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
            preferredVersion: { groupVersion: `${name}/${vs[0] ?? ""}`, version: vs[0] ?? "" },
          })),
        };
      }
      case "group": {
        const list: unknown[] = [];
        for (const r of resources) {
          if (r.group !== route.group || r.version !== route.version) continue;
          const entry: Record<string, unknown> = {
            name: r.resource,
            singularName: r.singular,
            namespaced: r.namespaced,
            kind: r.kind,
            verbs: ["create", "delete", "get", "list", "update", "watch"],
          };
          if (r.shortNames !== undefined) entry["shortNames"] = r.shortNames;
          list.push(entry);
          if (r.resource === "pods") list.push({ name: "pods/log", singularName: "", namespaced: true, kind: "Pod", verbs: ["get"] });
        }
        return { kind: "APIResourceList", apiVersion: "v1", groupVersion: route.group === "" ? route.version : `${route.group}/${route.version}`, resources: list };
      }
    }
  }

  // ── server ──

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify(failure(500, "InternalError", `Internal error occurred: ${e instanceof Error ? e.message : String(e)}`)));
      }
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  for (const o of opts.objects ?? []) store.create(resourceOfObject(o), o);

  function kubeconfigYaml(o: { namespace?: string } = {}): string {
    // JSON strings are valid YAML scalars, which keeps this free of quoting rules.
    const q = JSON.stringify;
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "  - name: fake",
      "    cluster:",
      `      server: ${q(url)}`,
      // client-node refuses plain http without this ("HTTP protocol is not allowed when skipTLSVerify is not set").
      "      insecure-skip-tls-verify: true",
      "users:",
      "  - name: fake",
      "    user:",
      `      token: ${q(token ?? "no-token")}`,
      "contexts:",
      "  - name: fake",
      "    context:",
      "      cluster: fake",
      "      user: fake",
      `      namespace: ${q(o.namespace ?? "default")}`,
      "current-context: fake",
      "",
    ].join("\n");
  }

  const fake: KubeFake = {
    url,
    token,
    kubeconfigYaml,
    kubeconfigPath(dir?: string): string {
      let d = dir;
      if (d === undefined) d = tempDir ??= mkdtempSync(join(tmpdir(), "kubecano-kube-fake-"));
      else mkdirSync(d, { recursive: true });
      const p = join(d, "kubeconfig");
      writeFileSync(p, kubeconfigYaml(), { mode: 0o600 });
      return p;
    },

    add<T extends KubeObject>(obj: T): T {
      return clone(store.create(resourceOfObject(obj), obj)) as T;
    },
    apply<T extends KubeObject>(obj: T): T {
      const rt = resourceOfObject(obj);
      const exists = store.get(rt, obj.metadata.namespace ?? "default", obj.metadata.name ?? "") !== undefined;
      return clone(exists ? store.update(rt, obj, undefined, false).object : store.create(rt, obj)) as T;
    },
    update<T extends KubeObject>(obj: T): T {
      return clone(store.update(resourceOfObject(obj), obj, undefined, false).object) as T;
    },
    modify(kind, namespace, name, fn) {
      const rt = resolveKind(kind);
      const cur = store.get(rt, namespace, name);
      if (cur === undefined) throw errNotFound(rt, name);
      const copy = clone(cur);
      fn(copy);
      return clone(store.update(rt, copy, rt.namespaced ? namespace : undefined, false).object);
    },
    remove(kind, namespace, name) {
      return clone(store.delete(resolveKind(kind), namespace, name));
    },
    get(kind, namespace, name) {
      const o = store.get(resolveKind(kind), namespace, name);
      return o === undefined ? undefined : clone(o);
    },
    list(kind, namespace) {
      return store
        .all(resolveKind(kind))
        .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
        .map(clone);
    },
    get resourceVersion() {
      return String(store.resourceVersion);
    },

    setLog(target, content) {
      const at = now().getTime();
      const lines =
        typeof content === "string"
          ? (content === "" ? [] : content.replace(/\n$/, "").split("\n")).map((text) => ({ text, stamp: rfc3339Nano(at), ms: at }))
          : content.map((l) => {
              const ms = new Date(l.time).getTime();
              return { text: l.line, stamp: typeof l.time === "string" ? l.time : rfc3339Nano(ms), ms };
            });
      logs.set(logKey(target.namespace ?? "default", target.pod, target.container, target.previous === true), { lines });
    },

    get watches() {
      return [...watchers].map((w) => w.info);
    },
    waitForWatches(count = 1, match, timeoutMs = 5000) {
      const enough = (): boolean => [...watchers].filter((w) => matches(match, w.info.request)).length >= count;
      if (enough()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!enough()) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`kube fake: fewer than ${count} matching watches after ${timeoutMs} ms (open: ${watchers.size})`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          watchWaiters.delete(check);
        };
        watchWaiters.add(check);
      });
    },
    compact(rv) {
      store.compact(rv === undefined ? undefined : Number(rv));
      for (const [id, s] of snapshots) if (s.rv < store.compactedResourceVersion) snapshots.delete(id);
    },
    bookmark: sendBookmarks,
    dropWatches(o = {}) {
      const ws = [...watchers];
      for (const w of ws) {
        watchers.delete(w);
        if (o.graceful === true) w.res.end();
        else w.res.destroy();
      }
      return ws.length;
    },
    stallWatches() {
      let n = 0;
      for (const w of watchers) {
        if (w.stalled === true) continue;
        w.stalled = true;
        if (w.timer !== undefined) clearTimeout(w.timer);
        n++;
      }
      return n;
    },
    expireWatches() {
      const ws = [...watchers];
      for (const w of ws) {
        watchers.delete(w);
        writeEvent(w, "ERROR", expiredStatus(Number(w.info.resourceVersion || store.resourceVersion)));
        w.res.end();
      }
      return ws.length;
    },

    delay(ms, match) {
      return handleOf(addFault(match, { kind: "delay", ms }, Infinity));
    },
    failNext(status, match, count = 1, o = {}) {
      return handleOf(addFault(match, { kind: "fail", status, message: o.message, retryAfterSeconds: o.retryAfterSeconds ?? 1 }, count));
    },
    hang(match) {
      const f = addFault(match, { kind: "hang" }, Infinity);
      return {
        get hits() {
          return f.hits;
        },
        get waiting() {
          return [...held].filter((h) => h.fault === f).length;
        },
        remove: () => removeFault(f),
        release() {
          removeFault(f);
          for (const h of [...held]) {
            if (h.fault !== f) continue;
            held.delete(h);
            h.proceed(true);
          }
        },
      };
    },
    dropNext(match, count = 1) {
      return handleOf(addFault(match, { kind: "drop" }, count));
    },
    forbid(match) {
      return handleOf(addFault(match, { kind: "forbid" }, Infinity));
    },
    clearFaults() {
      for (const f of [...faults]) removeFault(f);
      for (const h of [...held]) {
        held.delete(h);
        h.proceed(true);
      }
    },

    get requests() {
      return requests;
    },
    count(match) {
      return requests.filter((r) => matches(match, r)).length;
    },
    clearRequests() {
      requests.length = 0;
    },

    async close() {
      closing = true;
      if (bookmarkTimer !== undefined) clearInterval(bookmarkTimer);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const w of watchers) {
        if (w.timer !== undefined) clearTimeout(w.timer);
        w.res.destroy();
      }
      watchers.clear();
      for (const h of held) h.proceed(false);
      held.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
    },
  };
  return fake;
}

// ───────────────────────────── builders ─────────────────────────────
// Plain functions returning objects as the server serves them. They set
// metadata.uid eagerly so that owner references between built objects hold.

export interface ContainerSpec {
  name: string;
  image?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  command?: string[];
  args?: string[];
  ports?: { containerPort: number; name?: string; protocol?: string }[];
  env?: { name: string; value?: string }[];
  [key: string]: unknown;
}

export interface ContainerStateWaiting {
  reason?: string;
  message?: string;
}
export interface ContainerStateRunning {
  startedAt?: string;
}
export interface ContainerStateTerminated {
  exitCode: number;
  signal?: number;
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  containerID?: string;
}
export interface ContainerState {
  waiting?: ContainerStateWaiting;
  running?: ContainerStateRunning;
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  state?: ContainerState;
  lastState?: ContainerState;
  image?: string;
  imageID?: string;
  containerID?: string;
}

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastHeartbeatTime?: string;
  lastUpdateTime?: string;
  lastProbeTime?: string | null;
}

export interface MetaOptions {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  /** Shorthand: a controller owner reference to this object. */
  owner?: KubeObject;
  uid?: string;
  createdAt?: Time;
}

const hex = (bytes: number): string => randomBytes(bytes).toString("hex");
const containerId = (): string => `containerd://${hex(32)}`;

/** A controller owner reference to `o` (what a ReplicaSet puts on its pods). */
export function ownerRef(o: KubeObject, controller = true): OwnerReference {
  return { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name ?? "", uid: o.metadata.uid ?? "", controller, blockOwnerDeletion: true };
}

function meta(o: MetaOptions, namespaced: boolean): ObjectMeta {
  const m: ObjectMeta = { name: o.name, uid: o.uid ?? randomUUID(), creationTimestamp: rfc3339(o.createdAt ?? new Date()) };
  if (namespaced) m.namespace = o.namespace ?? "default";
  if (o.labels !== undefined) m.labels = { ...o.labels };
  if (o.annotations !== undefined) m.annotations = { ...o.annotations };
  const owners = [...(o.ownerReferences ?? []), ...(o.owner !== undefined ? [ownerRef(o.owner)] : [])];
  if (owners.length > 0) m.ownerReferences = owners;
  return m;
}

export interface PodOptions extends MetaOptions {
  /** spec.nodeName; without it the pod is Pending and unscheduled. */
  node?: string;
  /** Default one container "app". */
  containers?: ContainerSpec[];
  initContainers?: ContainerSpec[];
  /** Merged by name over the defaults (running, ready, 0 restarts, a containerID). */
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
  phase?: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
  /** status.reason / status.message, e.g. "Evicted". */
  reason?: string;
  message?: string;
  conditions?: Condition[];
  podIP?: string;
  hostIP?: string;
  startTime?: Time;
  restartPolicy?: "Always" | "OnFailure" | "Never";
  serviceAccountName?: string;
  priorityClassName?: string;
}

/** Guaranteed / Burstable / BestEffort, from requests and limits as the real server computes it. */
function qosClass(containers: readonly ContainerSpec[]): string {
  let any = false;
  let guaranteed = true;
  for (const c of containers) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    if (Object.keys(req).length > 0 || Object.keys(lim).length > 0) any = true;
    for (const r of ["cpu", "memory"]) {
      const l = lim[r];
      if (l === undefined || (req[r] ?? l) !== l) guaranteed = false;
    }
  }
  return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

export function pod(o: PodOptions): KubeObject {
  const m = meta(o, true);
  const containers: ContainerSpec[] = (o.containers ?? [{ name: "app" }]).map((c) => ({
    image: "registry.example.com/app:1.0.0",
    imagePullPolicy: "IfNotPresent",
    resources: {},
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    ...c,
  }));
  const initContainers = o.initContainers?.map((c) => ({ image: "registry.example.com/init:1.0.0", ...c }));
  const started = rfc3339(o.startTime ?? o.createdAt ?? new Date());
  const scheduled = o.node !== undefined && o.node !== "";
  const statusOf = (c: ContainerSpec, given: ContainerStatus | undefined): ContainerStatus => {
    const image = c.image ?? "registry.example.com/app:1.0.0";
    const s: ContainerStatus = {
      name: c.name,
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: started } },
      lastState: {},
      image,
      imageID: `${image.split(":")[0] ?? image}@sha256:${hex(32)}`,
      containerID: containerId(),
      ...given,
    };
    // Real terminated states carry the instance's containerID (the kubelet finds logs by it).
    if (s.lastState?.terminated !== undefined) s.lastState = { terminated: { containerID: containerId(), ...s.lastState.terminated } };
    if (s.state?.terminated !== undefined) s.state = { terminated: { containerID: s.containerID, ...s.state.terminated } };
    if (s.state?.running === undefined) s.started = given?.started ?? false;
    return s;
  };
  const phase = o.phase ?? (scheduled ? "Running" : "Pending");
  const status: Record<string, unknown> = { phase, qosClass: qosClass(containers) };
  if (o.reason !== undefined) status["reason"] = o.reason;
  if (o.message !== undefined) status["message"] = o.message;
  const spec: Record<string, unknown> = {
    containers,
    restartPolicy: o.restartPolicy ?? "Always",
    serviceAccountName: o.serviceAccountName ?? "default",
    schedulerName: "default-scheduler",
    terminationGracePeriodSeconds: 30,
    dnsPolicy: "ClusterFirst",
  };
  if (initContainers !== undefined) spec["initContainers"] = initContainers;
  if (o.priorityClassName !== undefined) spec["priorityClassName"] = o.priorityClassName;
  if (scheduled) {
    spec["nodeName"] = o.node;
    const statuses = containers.map((c) => statusOf(c, o.containerStatuses?.find((s) => s.name === c.name)));
    const allReady = statuses.every((s) => s.ready === true);
    status["containerStatuses"] = statuses;
    if (initContainers !== undefined) {
      status["initContainerStatuses"] = initContainers.map((c) =>
        statusOf(c, o.initContainerStatuses?.find((s) => s.name === c.name) ?? { name: c.name, ready: true, state: { terminated: { exitCode: 0, reason: "Completed", startedAt: started, finishedAt: started } } }),
      );
    }
    status["hostIP"] = o.hostIP ?? "10.0.0.10";
    status["podIP"] = o.podIP ?? `10.244.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
    status["startTime"] = started;
    const cond = (type: string, ok: boolean, reason?: string): Condition => ({
      type,
      status: ok ? "True" : "False",
      lastProbeTime: null,
      lastTransitionTime: started,
      ...(ok || reason === undefined ? {} : { reason }),
    });
    status["conditions"] = o.conditions ?? [
      cond("PodReadyToStartContainers", true),
      cond("Initialized", true),
      cond("Ready", allReady, "ContainersNotReady"),
      cond("ContainersReady", allReady, "ContainersNotReady"),
      cond("PodScheduled", true),
    ];
  } else {
    status["conditions"] = o.conditions ?? [
      {
        type: "PodScheduled",
        status: "False",
        lastProbeTime: null,
        lastTransitionTime: started,
        reason: "Unschedulable",
        message: "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
      },
    ];
  }
  return { apiVersion: "v1", kind: "Pod", metadata: m, spec, status };
}

export interface CrashLoopOptions extends Omit<PodOptions, "containerStatuses"> {
  /** The crashing container (default the first). */
  container?: string;
  restartCount?: number;
  exitCode?: number;
  /** lastState.terminated.reason (default "Error"). */
  terminatedReason?: string;
  /** When the last instance finished (default now). */
  finishedAt?: Time;
  /** The other containers' statuses. */
  containerStatuses?: ContainerStatus[];
}

/** A pod whose container keeps crashing: waiting CrashLoopBackOff, lastState terminated, not ready. */
export function crashLoopingPod(o: CrashLoopOptions): KubeObject {
  const name = o.container ?? o.containers?.[0]?.name ?? "app";
  const finished = o.finishedAt !== undefined ? new Date(o.finishedAt) : new Date();
  const restarts = o.restartCount ?? 5;
  const backoff = Math.min(10 * 2 ** Math.max(restarts - 1, 0), 300);
  const uid = o.uid ?? randomUUID();
  const crashing: ContainerStatus = {
    name,
    ready: false,
    started: false,
    restartCount: restarts,
    state: {
      waiting: {
        reason: "CrashLoopBackOff",
        message: `back-off ${backoff >= 60 ? `${Math.floor(backoff / 60)}m${backoff % 60}s` : `${backoff}s`} restarting failed container=${name} pod=${o.name}_${o.namespace ?? "default"}(${uid})`,
      },
    },
    lastState: {
      terminated: {
        exitCode: o.exitCode ?? 1,
        reason: o.terminatedReason ?? "Error",
        startedAt: rfc3339(new Date(finished.getTime() - 5000)),
        finishedAt: rfc3339(finished),
        containerID: containerId(),
      },
    },
  };
  return pod({ ...o, uid, node: o.node ?? "node-1", containerStatuses: [...(o.containerStatuses ?? []).filter((s) => s.name !== name), crashing] });
}

/** A pod whose container was OOMKilled (exit 137); by default it is now in CrashLoopBackOff, with `backOff: false` it runs again. */
export function oomKilledPod(o: CrashLoopOptions & { backOff?: boolean }): KubeObject {
  const p = crashLoopingPod({ ...o, exitCode: 137, terminatedReason: "OOMKilled", restartCount: o.restartCount ?? 3 });
  if (o.backOff === false) {
    const statuses = (p["status"] as { containerStatuses: ContainerStatus[] }).containerStatuses;
    const name = o.container ?? o.containers?.[0]?.name ?? "app";
    for (const s of statuses) {
      if (s.name !== name) continue;
      s.state = { running: { startedAt: s.lastState?.terminated?.finishedAt ?? rfc3339(new Date()) } };
      s.ready = true;
      s.started = true;
    }
    // Running again: the pod is ready again once every container is (given conditions are kept).
    const status = p["status"] as { conditions?: Condition[] };
    if (o.conditions === undefined && statuses.every((s) => s.ready === true)) {
      for (const c of status.conditions ?? []) {
        if (c.type !== "Ready" && c.type !== "ContainersReady") continue;
        c.status = "True";
        delete c.reason;
      }
    }
  }
  return p;
}

/** A pod whose image cannot be pulled: waiting ImagePullBackOff. */
export function imagePullBackOffPod(o: PodOptions & { container?: string }): KubeObject {
  const name = o.container ?? o.containers?.[0]?.name ?? "app";
  const image = o.containers?.find((c) => c.name === name)?.image ?? "registry.example.com/app:1.0.0";
  return pod({
    ...o,
    node: o.node ?? "node-1",
    containerStatuses: [
      ...(o.containerStatuses ?? []).filter((s) => s.name !== name),
      { name, ready: false, started: false, restartCount: 0, image, imageID: "", state: { waiting: { reason: "ImagePullBackOff", message: `Back-off pulling image "${image}"` } } },
    ],
  });
}

/** A pod evicted by the kubelet: phase Failed, reason Evicted. */
export function evictedPod(o: PodOptions & { resource?: "memory" | "ephemeral-storage" }): KubeObject {
  const resource = o.resource ?? "memory";
  const names = (o.containers ?? [{ name: "app" }]).map((c) => c.name);
  return pod({
    ...o,
    node: o.node ?? "node-1",
    phase: "Failed",
    reason: "Evicted",
    message: `The node was low on resource: ${resource}. Threshold quantity: 100Mi, available: 51200Ki. `,
    containerStatuses: names.map((name) => ({ name, ready: false, started: false, state: { terminated: { exitCode: 137, reason: "ContainerStatusUnknown", message: "The container could not be located when the pod was terminated" } } })),
  });
}

export interface ObjectReference {
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  apiVersion?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export interface EventOptions {
  /** Default "<involved name>.<16 hex>". */
  name?: string;
  /** Default the involved object's namespace, else "default" (where node events go). */
  namespace?: string;
  involvedObject: KubeObject | ObjectReference;
  /** e.g. "spec.containers{app}". */
  fieldPath?: string;
  reason: string;
  message: string;
  /** Default Warning for the well-known failure reasons, else Normal. */
  type?: "Normal" | "Warning";
  count?: number;
  firstTimestamp?: Time;
  lastTimestamp?: Time;
  eventTime?: Time;
  series?: { count: number; lastObservedTime: Time };
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
  uid?: string;
}

const WARNING_REASONS = new Set([
  "BackOff", "Failed", "FailedMount", "FailedAttachVolume", "FailedScheduling", "FailedCreate", "FailedCreatePodSandBox", "Unhealthy",
  "Evicted", "OOMKilling", "SystemOOM", "NodeNotReady", "FailedKillPod", "BackoffLimitExceeded", "DeadlineExceeded", "ProgressDeadlineExceeded",
  "FailedSync", "InspectFailed", "ErrImageNeverPull", "FailedPreStopHook", "FailedPostStartHook", "EvictionThresholdMet", "NodeHasDiskPressure",
  "NodeHasInsufficientMemory", "FreeDiskSpaceFailed", "ImageGCFailed", "Rebooted",
]);

/** The component that emits events about each kind (the kubelet for pods and nodes, the controllers otherwise). */
const EVENT_SOURCE: Readonly<Record<string, string>> = {
  Pod: "kubelet",
  Node: "kubelet",
  ReplicaSet: "replicaset-controller",
  Deployment: "deployment-controller",
  StatefulSet: "statefulset-controller",
  DaemonSet: "daemonset-controller",
  Job: "job-controller",
  CronJob: "cronjob-controller",
};

/** A core/v1 Event about `involvedObject`. */
export function event(o: EventOptions): KubeObject {
  const inv = o.involvedObject;
  const ref: ObjectReference =
    "metadata" in inv
      ? { kind: inv.kind, namespace: inv.metadata.namespace, name: inv.metadata.name ?? "", uid: inv.metadata.uid, apiVersion: inv.apiVersion }
      : { ...inv };
  if ("metadata" in inv && inv.metadata.resourceVersion !== undefined) ref.resourceVersion = inv.metadata.resourceVersion;
  if (o.fieldPath !== undefined) ref.fieldPath = o.fieldPath;
  for (const k of Object.keys(ref) as (keyof ObjectReference)[]) if (ref[k] === undefined) delete ref[k];
  const first = rfc3339(o.firstTimestamp ?? new Date());
  const last = rfc3339(o.lastTimestamp ?? o.firstTimestamp ?? new Date());
  const podNode = "metadata" in inv && inv.kind === "Pod" ? ((inv["spec"] as { nodeName?: string } | undefined)?.nodeName ?? undefined) : undefined;
  const component = o.source?.component ?? (o.reason === "FailedScheduling" ? "default-scheduler" : EVENT_SOURCE[ref.kind] ?? "kubelet");
  const host = o.source?.host ?? (component === "kubelet" ? (ref.kind === "Node" ? ref.name : podNode) : undefined);
  const source: Record<string, string> = { component };
  if (host !== undefined) source["host"] = host;
  const e: KubeObject = {
    apiVersion: "v1",
    kind: "Event",
    metadata: {
      name: o.name ?? `${ref.name}.${hex(8)}`,
      namespace: o.namespace ?? ref.namespace ?? "default",
      uid: o.uid ?? randomUUID(),
      creationTimestamp: first,
    },
    involvedObject: ref,
    reason: o.reason,
    message: o.message,
    type: o.type ?? (WARNING_REASONS.has(o.reason) ? "Warning" : "Normal"),
    count: o.count ?? 1,
    firstTimestamp: first,
    lastTimestamp: last,
    eventTime: o.eventTime !== undefined ? microTime(o.eventTime) : null,
    source,
    reportingComponent: o.reportingComponent ?? component,
    reportingInstance: o.reportingInstance ?? host ?? "",
  };
  if (o.series !== undefined) e["series"] = { count: o.series.count, lastObservedTime: microTime(o.series.lastObservedTime) };
  return e;
}

interface WorkloadOptions extends MetaOptions {
  replicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  updatedReplicas?: number;
  /** Default `labels`, else {app: name}. */
  selector?: Record<string, string>;
  containers?: ContainerSpec[];
  generation?: number;
  observedGeneration?: number;
}

function template(o: WorkloadOptions, extraLabels: Record<string, string> = {}): { sel: Record<string, string>; tpl: Record<string, unknown> } {
  const sel = o.selector ?? o.labels ?? { app: o.name };
  const containers = (o.containers ?? [{ name: "app" }]).map((c) => ({ image: "registry.example.com/app:1.0.0", resources: {}, ...c }));
  return { sel, tpl: { metadata: { labels: { ...sel, ...extraLabels } }, spec: { containers, restartPolicy: "Always" } } };
}

function workloadMeta(o: WorkloadOptions): ObjectMeta {
  const m = meta({ ...o, labels: o.labels ?? { app: o.name } }, true);
  m.generation = o.generation ?? 1;
  return m;
}

export function deployment(o: WorkloadOptions & { unavailableReplicas?: number; progressDeadlineExceeded?: boolean; newReplicaSet?: string }): KubeObject {
  const replicas = o.replicas ?? 1;
  const ready = o.readyReplicas ?? replicas;
  const available = o.availableReplicas ?? ready;
  const { sel, tpl } = template(o);
  const at = rfc3339(o.createdAt ?? new Date());
  const rsName = o.newReplicaSet ?? `${o.name}-7d4b9c8f6d`;
  const m = workloadMeta(o);
  m.annotations = { "deployment.kubernetes.io/revision": "1", ...m.annotations };
  const conditions: Condition[] = [
    available >= replicas
      ? { type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "Deployment has minimum availability.", lastUpdateTime: at, lastTransitionTime: at }
      : { type: "Available", status: "False", reason: "MinimumReplicasUnavailable", message: "Deployment does not have minimum availability.", lastUpdateTime: at, lastTransitionTime: at },
    o.progressDeadlineExceeded === true
      ? { type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: `ReplicaSet "${rsName}" has timed out progressing.`, lastUpdateTime: at, lastTransitionTime: at }
      : { type: "Progressing", status: "True", reason: "NewReplicaSetAvailable", message: `ReplicaSet "${rsName}" has successfully progressed.`, lastUpdateTime: at, lastTransitionTime: at },
  ];
  const status: Record<string, unknown> = {
    observedGeneration: o.observedGeneration ?? m.generation,
    replicas,
    updatedReplicas: o.updatedReplicas ?? replicas,
    readyReplicas: ready,
    availableReplicas: available,
    conditions,
  };
  const unavailable = o.unavailableReplicas ?? Math.max(replicas - available, 0);
  if (unavailable > 0) status["unavailableReplicas"] = unavailable;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: m,
    spec: {
      replicas,
      selector: { matchLabels: sel },
      template: tpl,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    },
    status,
  };
}

/** A ReplicaSet; give `owner: deployment(...)` for the usual chain Pod → ReplicaSet → Deployment. */
export function replicaSet(o: WorkloadOptions & { revision?: string }): KubeObject {
  const replicas = o.replicas ?? 1;
  const ready = o.readyReplicas ?? replicas;
  const hash = /-([a-z0-9]{5,10})$/.exec(o.name)?.[1] ?? "7d4b9c8f6d";
  const { sel, tpl } = template({ ...o, selector: { ...(o.selector ?? o.labels ?? { app: o.name.replace(/-[a-z0-9]{5,10}$/, "") }), "pod-template-hash": hash } });
  const m = workloadMeta({ ...o, labels: o.labels ?? sel });
  m.annotations = { "deployment.kubernetes.io/revision": o.revision ?? "1", ...m.annotations };
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: m,
    spec: { replicas, selector: { matchLabels: sel }, template: tpl },
    status: {
      replicas,
      fullyLabeledReplicas: replicas,
      readyReplicas: ready,
      availableReplicas: o.availableReplicas ?? ready,
      observedGeneration: o.observedGeneration ?? m.generation,
    },
  };
}

export function statefulSet(o: WorkloadOptions & { serviceName?: string; currentRevision?: string; updateRevision?: string }): KubeObject {
  const replicas = o.replicas ?? 1;
  const ready = o.readyReplicas ?? replicas;
  const { sel, tpl } = template(o);
  const m = workloadMeta(o);
  const rev = o.currentRevision ?? `${o.name}-5c7d9f8b6c`;
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: m,
    spec: { replicas, selector: { matchLabels: sel }, template: tpl, serviceName: o.serviceName ?? o.name, podManagementPolicy: "OrderedReady", updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0 } } },
    status: {
      observedGeneration: o.observedGeneration ?? m.generation,
      replicas,
      readyReplicas: ready,
      currentReplicas: replicas,
      updatedReplicas: o.updatedReplicas ?? replicas,
      availableReplicas: o.availableReplicas ?? ready,
      currentRevision: rev,
      updateRevision: o.updateRevision ?? rev,
      collisionCount: 0,
    },
  };
}

export function daemonSet(
  o: Omit<WorkloadOptions, "replicas" | "readyReplicas" | "availableReplicas" | "updatedReplicas"> & {
    desired?: number;
    ready?: number;
    available?: number;
    updated?: number;
    misscheduled?: number;
  },
): KubeObject {
  const desired = o.desired ?? 3;
  const ready = o.ready ?? desired;
  const available = o.available ?? ready;
  const { sel, tpl } = template(o);
  const m = workloadMeta(o);
  const status: Record<string, unknown> = {
    currentNumberScheduled: desired,
    numberMisscheduled: o.misscheduled ?? 0,
    desiredNumberScheduled: desired,
    numberReady: ready,
    observedGeneration: o.observedGeneration ?? m.generation,
    updatedNumberScheduled: o.updated ?? desired,
    numberAvailable: available,
  };
  if (desired - available > 0) status["numberUnavailable"] = desired - available;
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: m,
    spec: { selector: { matchLabels: sel }, template: tpl, updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } } },
    status,
  };
}

export interface JobOptions extends MetaOptions {
  completions?: number;
  parallelism?: number;
  backoffLimit?: number;
  active?: number;
  succeeded?: number;
  failed?: number;
  /** running (default), complete, or failed (Failed condition, BackoffLimitExceeded unless `failureReason`). */
  outcome?: "running" | "complete" | "failed";
  failureReason?: string;
  failureMessage?: string;
  startTime?: Time;
  completionTime?: Time;
  containers?: ContainerSpec[];
}

export function job(o: JobOptions): KubeObject {
  const m = meta(o, true);
  const uid = m.uid ?? "";
  const podLabels = { "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": o.name, "controller-uid": uid, "job-name": o.name };
  m.labels = { ...podLabels, ...m.labels };
  m.generation = 1;
  const outcome = o.outcome ?? "running";
  const start = rfc3339(o.startTime ?? o.createdAt ?? new Date());
  const end = rfc3339(o.completionTime ?? new Date());
  const completions = o.completions ?? 1;
  const status: Record<string, unknown> = { startTime: start };
  const active = o.active ?? (outcome === "running" ? 1 : 0);
  if (active > 0) status["active"] = active;
  const succeeded = o.succeeded ?? (outcome === "complete" ? completions : 0);
  if (succeeded > 0) status["succeeded"] = succeeded;
  const failed = o.failed ?? (outcome === "failed" ? (o.backoffLimit ?? 6) + 1 : 0);
  if (failed > 0) status["failed"] = failed;
  status["ready"] = 0;
  status["terminating"] = 0;
  status["uncountedTerminatedPods"] = {};
  if (outcome === "complete") {
    status["completionTime"] = end;
    status["conditions"] = [{ type: "Complete", status: "True", lastProbeTime: end, lastTransitionTime: end }];
  } else if (outcome === "failed") {
    status["conditions"] = [
      {
        type: "Failed",
        status: "True",
        reason: o.failureReason ?? "BackoffLimitExceeded",
        message: o.failureMessage ?? "Job has reached the specified backoff limit",
        lastProbeTime: end,
        lastTransitionTime: end,
      },
    ];
  }
  const containers = (o.containers ?? [{ name: "job" }]).map((c) => ({ image: "registry.example.com/job:1.0.0", resources: {}, ...c }));
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: m,
    spec: {
      parallelism: o.parallelism ?? 1,
      completions,
      backoffLimit: o.backoffLimit ?? 6,
      completionMode: "NonIndexed",
      suspend: false,
      selector: { matchLabels: { "batch.kubernetes.io/controller-uid": uid } },
      template: { metadata: { labels: podLabels }, spec: { containers, restartPolicy: "Never" } },
    },
    status,
  };
}

export function cronJob(o: MetaOptions & { schedule?: string; suspend?: boolean; lastScheduleTime?: Time; lastSuccessfulTime?: Time; containers?: ContainerSpec[] }): KubeObject {
  const status: Record<string, unknown> = {};
  if (o.lastScheduleTime !== undefined) status["lastScheduleTime"] = rfc3339(o.lastScheduleTime);
  if (o.lastSuccessfulTime !== undefined) status["lastSuccessfulTime"] = rfc3339(o.lastSuccessfulTime);
  const containers = (o.containers ?? [{ name: "job" }]).map((c) => ({ image: "registry.example.com/job:1.0.0", resources: {}, ...c }));
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { ...meta(o, true), generation: 1 },
    spec: {
      schedule: o.schedule ?? "*/5 * * * *",
      suspend: o.suspend ?? false,
      concurrencyPolicy: "Allow",
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 1,
      jobTemplate: { spec: { template: { spec: { containers, restartPolicy: "OnFailure" } } } },
    },
    status,
  };
}

export interface NodeOptions extends Omit<MetaOptions, "namespace" | "owner"> {
  /** "Unknown" = the kubelet stopped posting status. Default true. */
  ready?: boolean | "Unknown";
  memoryPressure?: boolean;
  diskPressure?: boolean;
  pidPressure?: boolean;
  networkUnavailable?: boolean;
  unschedulable?: boolean;
  taints?: { key: string; value?: string; effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute"; timeAdded?: string }[];
  capacity?: Record<string, string>;
  allocatable?: Record<string, string>;
  kubeletVersion?: string;
  internalIP?: string;
  /** Replaces the computed conditions. */
  conditions?: Condition[];
}

export function node(o: NodeOptions): KubeObject {
  const m = meta({ ...o, labels: { "kubernetes.io/hostname": o.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", ...o.labels } }, false);
  const at = rfc3339(o.createdAt ?? new Date());
  const heartbeat = rfc3339(new Date());
  const c = (type: string, status: Condition["status"], reason: string, message: string): Condition => ({
    type,
    status,
    lastHeartbeatTime: heartbeat,
    lastTransitionTime: at,
    reason,
    message,
  });
  const ready = o.ready ?? true;
  const conditions: Condition[] = o.conditions ?? [
    ...(o.networkUnavailable !== undefined
      ? [o.networkUnavailable ? c("NetworkUnavailable", "True", "NoRouteCreated", "Node created without a route") : c("NetworkUnavailable", "False", "RouteCreated", "RouteController created a route")]
      : []),
    o.memoryPressure === true
      ? c("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
      : c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    o.diskPressure === true
      ? c("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
      : c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    o.pidPressure === true
      ? c("PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
      : c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ready === true
      ? c("Ready", "True", "KubeletReady", "kubelet is posting ready status")
      : ready === "Unknown"
        ? c("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        : c("Ready", "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"),
  ];
  const capacity = o.capacity ?? { cpu: "4", memory: "16374584Ki", pods: "110", "ephemeral-storage": "102625208Ki", "hugepages-2Mi": "0" };
  const spec: Record<string, unknown> = { podCIDR: "10.244.0.0/24", providerID: `fake://${o.name}` };
  if (o.unschedulable === true) spec["unschedulable"] = true;
  const taints = [...(o.taints ?? [])];
  if (o.unschedulable === true && !taints.some((t) => t.key === "node.kubernetes.io/unschedulable")) taints.push({ key: "node.kubernetes.io/unschedulable", effect: "NoSchedule", timeAdded: at });
  if (ready !== true && !taints.some((t) => t.key.startsWith("node.kubernetes.io/not-ready") || t.key.startsWith("node.kubernetes.io/unreachable"))) {
    taints.push({ key: ready === "Unknown" ? "node.kubernetes.io/unreachable" : "node.kubernetes.io/not-ready", effect: "NoSchedule", timeAdded: at });
  }
  if (taints.length > 0) spec["taints"] = taints;
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: m,
    spec,
    status: {
      capacity,
      allocatable: o.allocatable ?? { cpu: "3920m", memory: "15272248Ki", pods: "110", "ephemeral-storage": "94580335255", "hugepages-2Mi": "0" },
      conditions,
      addresses: [
        { type: "InternalIP", address: o.internalIP ?? "10.0.0.10" },
        { type: "Hostname", address: o.name },
      ],
      nodeInfo: {
        kubeletVersion: o.kubeletVersion ?? "v1.31.0",
        kubeProxyVersion: o.kubeletVersion ?? "v1.31.0",
        containerRuntimeVersion: "containerd://1.7.20",
        osImage: "Ubuntu 24.04 LTS",
        kernelVersion: "6.8.0-40-generic",
        operatingSystem: "linux",
        architecture: "amd64",
        machineID: hex(16),
        systemUUID: randomUUID(),
        bootID: randomUUID(),
      },
    },
  };
}

export function namespace(o: Omit<MetaOptions, "namespace" | "owner"> & { phase?: "Active" | "Terminating" }): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: meta({ ...o, labels: { "kubernetes.io/metadata.name": o.name, ...o.labels } }, false),
    spec: { finalizers: ["kubernetes"] },
    status: { phase: o.phase ?? "Active" },
  };
}

/** A Secret; `stringData` values are base64-encoded into `data`, as the server stores them. */
export function secret(o: MetaOptions & { type?: string; data?: Record<string, string>; stringData?: Record<string, string>; immutable?: boolean }): KubeObject {
  const data: Record<string, string> = { ...o.data };
  for (const [k, v] of Object.entries(o.stringData ?? {})) data[k] = Buffer.from(v, "utf8").toString("base64");
  const s: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: meta(o, true), type: o.type ?? "Opaque", data };
  if (o.immutable !== undefined) s["immutable"] = o.immutable;
  return s;
}

export interface HelmReleaseOptions {
  release: string;
  namespace?: string;
  revision?: number;
  status?: "deployed" | "failed" | "superseded" | "uninstalling" | "uninstalled" | "pending-install" | "pending-upgrade" | "pending-rollback" | "unknown";
  chart?: string;
  chartVersion?: string;
  appVersion?: string;
  description?: string;
  firstDeployed?: Time;
  lastDeployed?: Time;
  values?: Record<string, unknown>;
  manifest?: string;
  notes?: string;
}

/**
 * A Helm 3 release Secret (helm/helm pkg/storage/driver/secrets.go): named
 * `sh.helm.release.v1.<release>.v<revision>`, labels owner/name/status/version,
 * `data.release` = base64 (the Secret encoding) of base64 of gzipped release JSON.
 */
export function helmReleaseSecret(o: HelmReleaseOptions): KubeObject {
  const revision = o.revision ?? 1;
  const status = o.status ?? "deployed";
  const first = rfc3339(o.firstDeployed ?? new Date());
  const last = rfc3339(o.lastDeployed ?? o.firstDeployed ?? new Date());
  const release = {
    name: o.release,
    info: {
      first_deployed: first,
      last_deployed: last,
      deleted: "",
      description: o.description ?? (status === "failed" ? `Upgrade "${o.release}" failed: context deadline exceeded` : revision === 1 ? "Install complete" : "Upgrade complete"),
      status,
      notes: o.notes ?? "",
    },
    chart: {
      metadata: { name: o.chart ?? o.release, version: o.chartVersion ?? "1.0.0", appVersion: o.appVersion ?? "1.0.0", apiVersion: "v2", type: "application" },
      lock: null,
      templates: [],
      values: {},
      schema: null,
      files: [],
    },
    config: o.values ?? {},
    manifest: o.manifest ?? "",
    version: revision,
    namespace: o.namespace ?? "default",
  };
  const helmEncoded = gzipSync(Buffer.from(JSON.stringify(release), "utf8")).toString("base64");
  return secret({
    name: `sh.helm.release.v1.${o.release}.v${revision}`,
    namespace: o.namespace ?? "default",
    type: "helm.sh/release.v1",
    labels: { name: o.release, owner: "helm", status, version: String(revision), modifiedAt: String(Math.floor(new Date(last).getTime() / 1000)) },
    data: { release: Buffer.from(helmEncoded, "utf8").toString("base64") },
  });
}

export function lease(
  o: MetaOptions & { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: Time; renewTime?: Time; leaseTransitions?: number },
): KubeObject {
  const spec: Record<string, unknown> = { leaseDurationSeconds: o.leaseDurationSeconds ?? 15, leaseTransitions: o.leaseTransitions ?? 0 };
  if (o.holderIdentity !== undefined) spec["holderIdentity"] = o.holderIdentity;
  if (o.acquireTime !== undefined) spec["acquireTime"] = microTime(o.acquireTime);
  if (o.renewTime !== undefined) spec["renewTime"] = microTime(o.renewTime);
  return { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: meta(o, true), spec };
}

export function configMap(o: MetaOptions & { data?: Record<string, string> }): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: meta(o, true), data: { ...o.data } };
}

export function service(o: MetaOptions & { selector?: Record<string, string>; ports?: { port: number; targetPort?: number | string; name?: string; protocol?: string }[]; type?: string; clusterIP?: string }): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(o, true),
    spec: {
      type: o.type ?? "ClusterIP",
      clusterIP: o.clusterIP ?? "10.96.0.10",
      selector: o.selector ?? { app: o.name },
      ports: (o.ports ?? [{ port: 80, targetPort: 8080 }]).map((p) => ({ protocol: "TCP", ...p })),
    },
    status: { loadBalancer: {} },
  };
}
