import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric, type MetricValueWithName } from "prom-client";

/**
 * kubecano's Prometheus metrics. One registry per process (a new one per
 * test). Label values are bounded: destination names come from the config,
 * outcomes and codes from fixed sets, never from request or remote data.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly alertsReceived: Counter<"source">;
  readonly issuesCreated: Counter<"source" | "severity">;
  readonly deliveries: Counter<"destination" | "outcome">;
  readonly deliveryLatency: CellHistogram<"destination">;
  readonly deliveryAttemptDuration: CellHistogram<"destination">;
  readonly queueDepth: Gauge<"destination">;
  readonly httpRequests: Counter<"route" | "code">;
  readonly rejectedPayloads: Counter<"reason">;
  readonly duplicates: Counter;
  readonly enrichmentDuration: CellHistogram;
  readonly actions: Counter<"action" | "status">;
  readonly watchEvents: Counter<"resource">;
  readonly watchRestarts: Counter<"resource" | "reason">;
  readonly watchIssues: Counter<"reason">;
  readonly watchSuppressed: Counter<"reason" | "why">;
  readonly leader: Gauge;

  /** Counts of count() cells, by counter; handed to prom-client when the counter is read. */
  private readonly cells = new Map<object, Map<string, CountCell>>();

  /**
   * A labelled count for the webhook path: `inc` is a plain addition, and
   * the counter gets the sum whenever it is read (prom-client calls its
   * `collect` before every scrape or get()), so every read is exact. A
   * prom-client `inc` hashes and validates the labels on every call, which
   * added up to several microseconds per alert. Only for the counters below
   * whose `collect` flushes the cells (alertsReceived, issuesCreated,
   * deliveries, httpRequests, actions).
   */
  count<L extends string>(counter: Counter<L>, labels: Readonly<Record<L, string>>): CountCell {
    let byKey = this.cells.get(counter);
    if (byKey === undefined) this.cells.set(counter, (byKey = new Map()));
    let key = "";
    for (const k of Object.keys(labels).sort()) key += `${k}=${labels[k as L]}\u0000`;
    let cell = byKey.get(key);
    if (cell === undefined) byKey.set(key, (cell = new CountCell({ ...labels })));
    return cell;
  }

  private flushCells(counter: Counter<string>): void {
    const byKey = this.cells.get(counter);
    if (byKey === undefined) return;
    for (const cell of byKey.values()) {
      if (cell.n === 0) continue;
      counter.inc(cell.labels, cell.n);
      cell.n = 0;
    }
  }

  /** Where kubecano_queue_depth comes from (the delivery engine sets it). */
  private readonly depth: { source?: (() => Iterable<readonly [string, number]>) | undefined } = {};

  /** The queue depth by destination is read from `source` at every scrape. */
  setQueueDepthSource(source: () => Iterable<readonly [string, number]>): void {
    this.depth.source = source;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const cells = (m: Metrics): { collect(this: Counter<string>): void } => ({
      collect() {
        m.flushCells(this);
      },
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "kubecano_" });
    this.alertsReceived = new Counter({ name: "kubecano_alerts_received_total", help: "Alerts received in accepted webhook requests.", labelNames: ["source"], registers, ...cells(this) });
    this.issuesCreated = new Counter({ name: "kubecano_issues_created_total", help: "Issues created and queued for delivery.", labelNames: ["source", "severity"], registers, ...cells(this) });
    this.deliveries = new Counter({
      name: "kubecano_deliveries_total",
      help: "Delivery attempts by destination and outcome (success, retry, failed, dropped).",
      labelNames: ["destination", "outcome"],
      registers,
      ...cells(this),
    });
    this.deliveryLatency = new CellHistogram({
      name: "kubecano_delivery_latency_seconds",
      help: "Time from accepting an Issue to its successful delivery.",
      labelNames: ["destination"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    });
    this.deliveryAttemptDuration = new CellHistogram({
      name: "kubecano_delivery_attempt_duration_seconds",
      help: "Duration of one send attempt to a destination.",
      labelNames: ["destination"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const depth = this.depth;
    this.queueDepth = new Gauge({
      name: "kubecano_queue_depth",
      help: "Deliveries waiting to be sent, by destination.",
      labelNames: ["destination"],
      registers,
      // Read from the store when scraped rather than set after every delivery:
      // under load that was two labelled gauge updates per alert.
      collect() {
        if (depth.source === undefined) return;
        this.reset();
        for (const [destination, n] of depth.source()) this.set({ destination }, n);
      },
    });
    this.httpRequests = new Counter({ name: "kubecano_http_requests_total", help: "HTTP requests by route and status code.", labelNames: ["route", "code"], registers, ...cells(this) });
    this.rejectedPayloads = new Counter({
      name: "kubecano_rejected_payloads_total",
      help: "Webhook requests refused, by reason (auth, encoding, json, schema, too_large, content_type, backlog_full).",
      labelNames: ["reason"],
      registers,
    });
    this.duplicates = new Counter({
      name: "kubecano_duplicate_issues_total",
      help: "Issues accepted but not delivered again: same fingerprint, status and start within the dedup window (Alertmanager HA replicas, retries).",
      registers,
    });
    this.enrichmentDuration = new CellHistogram({
      name: "kubecano_enrichment_duration_seconds",
      help: "Time to run the workflows of one Issue that needed the cluster.",
      labelNames: [],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.actions = new Counter({
      name: "kubecano_workflow_actions_total",
      help: "Workflow actions run, by action and status (ok, failed, timeout, skipped).",
      labelNames: ["action", "status"],
      registers,
      ...cells(this),
    });
    this.watchEvents = new Counter({ name: "kubecano_watch_events_total", help: "Kubernetes objects received by the watchers (listed or watched), by resource.", labelNames: ["resource"], registers });
    this.watchRestarts = new Counter({
      name: "kubecano_watch_restarts_total",
      help: "Watches restarted, by resource and reason (ended: by the server; expired: 410, listed again; error; stall: silent too long).",
      labelNames: ["resource", "reason"],
      registers,
    });
    this.watchIssues = new Counter({ name: "kubecano_watch_issues_total", help: "Issues made from watched Kubernetes state and events, by reason (firing and resolved).", labelNames: ["reason"], registers });
    this.watchSuppressed = new Counter({
      name: "kubecano_watch_suppressed_total",
      help: "Findings not sent, by reason and why (rate_limited: one Issue per workload and reason per window; namespace, reason, ignored: filtered).",
      labelNames: ["reason", "why"],
      registers,
    });
    this.leader = new Gauge({ name: "kubecano_leader", help: "1 while this replica holds the leader Lease (watches the cluster and sends), else 0.", registers });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** One labelled count of Metrics.count(). */
export class CountCell {
  n = 0;
  constructor(readonly labels: Readonly<Record<string, string>>) {}

  inc(by = 1): void {
    this.n += by;
  }
}

/**
 * A Prometheus histogram kept as plain numbers per label set. prom-client's
 * Histogram validates and hashes its labels and builds a closure on every
 * observe, which was a measurable part of each delivery's cost; here a cell
 * is looked up once (labels()) and observe is a bucket search and three
 * additions. The registry reads it through get() like its own histograms,
 * and the exposition is the same (cumulative _bucket series with `le`,
 * _sum, _count).
 */
export class CellHistogram<L extends string = never> {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly labelNames: readonly L[];
  private readonly buckets: readonly number[];
  private readonly cells = new Map<string, HistogramCell>();

  constructor(config: { name: string; help: string; labelNames: readonly L[]; buckets: readonly number[]; registers: readonly Registry[] }) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.buckets = [...config.buckets].sort((a, b) => a - b);
    // The registry only needs name, help, type, get() and reset().
    for (const r of config.registers) r.registerMetric(this as unknown as Metric);
  }

  /** The cell of one label set: keep it, the lookup builds a key. */
  labels(labels: Readonly<Record<L, string>>): HistogramCell {
    let key = "";
    for (const n of this.labelNames) {
      const v = labels[n];
      if (typeof v !== "string") throw new Error(`${this.name}: label ${n} is missing`);
      key += `${v}\u0000`;
    }
    let cell = this.cells.get(key);
    if (cell === undefined) {
      const own: Record<string, string> = {};
      for (const n of this.labelNames) own[n] = labels[n];
      this.cells.set(key, (cell = new HistogramCell(own, this.buckets)));
    }
    return cell;
  }

  /** One observation, for a histogram without labels (or with them given). */
  observe(value: number, labels?: Readonly<Record<L, string>>): void {
    this.labels(labels ?? ({} as Record<L, string>)).observe(value);
  }

  reset(): void {
    this.cells.clear();
  }

  get(): Promise<{ name: string; help: string; type: "histogram"; aggregator: "sum"; values: MetricValueWithName<string>[] }> {
    const values: MetricValueWithName<string>[] = [];
    for (const cell of this.cells.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += cell.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: this.buckets[i]!, ...cell.labels }, value: acc });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf", ...cell.labels }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...cell.labels }, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...cell.labels }, value: cell.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

/** The observations of one label set of a CellHistogram. */
export class HistogramCell {
  /** Observations per bucket (not cumulative); those above the last bound are only in count. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    // Durations computed here: never NaN or infinite, but one must not poison the sum.
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}
