/**
 * Prometheus metrics of the relay, served on the admin listener's /metrics.
 * Gauges that describe live state (connections, queue, streams) are read at
 * scrape time from their owners instead of being kept in step by hand, and
 * so are the per-request figures (`ExchangeTally`).
 */
import { Counter, Gauge, Histogram, type Metric, Registry, collectDefaultMetrics } from 'prom-client';
import type { ExchangeSummary } from './proxy/http-proxy.ts';
import type { TunnelRegistry } from './tunnel/registry.ts';

export interface RelayMetrics {
  registry: Registry;
  exchange(summary: ExchangeSummary): void;
  queueWait(groupId: string, waitedMs: number, ok: boolean): void;
  registration(outcome: 'success' | 'refused', code?: string): void;
  tunnelRefused(code: string): void;
  /** Seconds until each connector's newest certificate expires (read from the store at scrape time). */
  certificateExpiry: Gauge<'connector'>;
  render(): Promise<string>;
}

/** Newest certificate expiry (epoch ms) of each connector that is not revoked. */
export type CertificateExpiries = () => Promise<Map<string, number>>;

export function createRelayMetrics(tunnels: () => TunnelRegistry | undefined, certificateExpiries?: CertificateExpiries): RelayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'drawbridge_relay_' });
  const recordExchange = registerExchangeMetrics(registry);
  const queueWait = new Histogram({
    name: 'drawbridge_queue_wait_seconds',
    help: 'Time requests waited for tunnel capacity, by group and outcome',
    labelNames: ['group', 'outcome'],
    buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const registrations = new Counter({ name: 'drawbridge_registrations_total', help: 'Connector registrations by outcome and refusal code', labelNames: ['outcome', 'code'], registers: [registry] });
  const refusals = new Counter({ name: 'drawbridge_tunnel_refusals_total', help: 'Tunnel upgrades refused, by code', labelNames: ['code'], registers: [registry] });
  new Gauge({
    name: 'drawbridge_queue_length',
    help: 'Requests waiting for tunnel capacity, by group',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [group, n] of tunnels()?.queueLengths() ?? []) this.set({ group }, n);
    },
  });
  new Gauge({
    name: 'drawbridge_tunnel_connections',
    help: 'Open tunnel connections, by group',
    labelNames: ['group'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const c of tunnels()?.connections() ?? []) counts.set(c.groupId, (counts.get(c.groupId) ?? 0) + 1);
      for (const [group, n] of counts) this.set({ group }, n);
    },
  });
  new Gauge({
    name: 'drawbridge_connectors_connected',
    help: 'Connectors with at least one open tunnel connection',
    registers: [registry],
    collect() {
      this.set(new Set((tunnels()?.connections() ?? []).map((c) => c.connectorId)).size);
    },
  });
  new Gauge({
    name: 'drawbridge_streams_in_flight',
    help: 'Requests being carried by tunnels right now',
    registers: [registry],
    collect() {
      this.set((tunnels()?.connections() ?? []).reduce((n, c) => n + c.session.openStreams, 0));
    },
  });
  const certificateExpiry = new Gauge({
    name: 'drawbridge_connector_certificate_expiry_seconds',
    help: 'Seconds until the newest certificate of each connector (not revoked) expires',
    labelNames: ['connector'],
    registers: [registry],
    async collect() {
      if (!certificateExpiries) return;
      const expiries = await certificateExpiries();
      this.reset();
      const now = Date.now();
      for (const [connector, notAfter] of expiries) this.set({ connector }, Math.round((notAfter - now) / 1000));
    },
  });

  return {
    registry,
    certificateExpiry,
    exchange(s) {
      recordExchange(s.app.name, s.status, (Date.now() - s.startedAt) / 1000, s.bytesIn, s.bytesOut);
    },
    queueWait(group, waitedMs, ok) {
      queueWait.observe({ group, outcome: ok ? 'served' : 'timeout' }, waitedMs / 1000);
    },
    registration(outcome, code = '') {
      registrations.inc({ outcome, code });
    },
    tunnelRefused(code) {
      refusals.inc({ code });
    },
    render: () => registry.metrics(),
  };
}

/** Upper bounds of `drawbridge_request_duration_seconds`, in seconds. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 90];

/** Records one finished exchange: its app, status, duration and body bytes each way. */
export type RecordExchange = (app: string, status: number, seconds: number, bytesIn: number, bytesOut: number) => void;

/**
 * The per-request metric families (requests by app and status, their
 * duration, body bytes) on `registry`; returns what records one finished
 * exchange.
 */
export function registerExchangeMetrics(registry: Registry): RecordExchange {
  const tally = new ExchangeTally(DURATION_BUCKETS);
  new Counter({
    name: 'drawbridge_requests_total',
    help: 'User requests by app and status',
    labelNames: ['app', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [app, t] of tally.apps) for (const [status, n] of t.statuses) this.inc({ app, status: String(status) }, n);
    },
  });
  registry.registerMetric(tally.durationMetric('drawbridge_request_duration_seconds', 'Time from request to end of response, by app'));
  new Counter({
    name: 'drawbridge_bytes_total',
    help: 'Body bytes by app and direction (in = from users)',
    labelNames: ['app', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [app, t] of tally.apps) {
        if (t.bytesIn > 0) this.inc({ app, direction: 'in' }, t.bytesIn);
        if (t.bytesOut > 0) this.inc({ app, direction: 'out' }, t.bytesOut);
      }
    },
  });
  return (app, status, seconds, bytesIn, bytesOut) => tally.record(app, status, seconds, bytesIn, bytesOut);
}

/** One line of a scrape, as prom-client's own metrics hand it to the registry. */
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

interface AppTally {
  statuses: Map<number, number>;
  /** Exchanges per duration bucket (not cumulative); the last slot counts those above every bound. */
  buckets: number[];
  sum: number;
  count: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * The per-request figures (requests by status, duration, body bytes) as
 * plain numbers per app, handed to prom-client only when scraped. prom-client
 * hashes the label object of every `inc` and `observe`, four times per
 * request: about 1 µs of the relay's 35–45 µs per small request, on every
 * request, for figures read every few seconds. Recording here is a map
 * lookup per request (a map that gains an entry per app, never per request:
 * docs/performance.md, item 12) and a few additions; the exposition is the
 * one prom-client produced.
 */
class ExchangeTally {
  readonly apps = new Map<string, AppTally>();
  private readonly bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
  }

  record(app: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    let t = this.apps.get(app);
    if (t === undefined) {
      t = { statuses: new Map(), buckets: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0, bytesIn: 0, bytesOut: 0 };
      this.apps.set(app, t);
    }
    t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    t.buckets[i]! += 1;
    t.sum += seconds;
    t.count += 1;
    t.bytesIn += bytesIn;
    t.bytesOut += bytesOut;
  }

  /** A histogram for the registry, read from the tally at scrape time, in the form prom-client's own Histogram exports. */
  durationMetric(name: string, help: string): Metric {
    const values = (): Sample[] => {
      const out: Sample[] = [];
      for (const [app, t] of this.apps) {
        let acc = 0;
        this.bounds.forEach((le, i) => {
          acc += t.buckets[i]!;
          out.push({ labels: { le, app }, value: acc, metricName: `${name}_bucket` });
        });
        out.push({ labels: { le: '+Inf', app }, value: t.count, metricName: `${name}_bucket` });
        out.push({ labels: { app }, value: t.sum, metricName: `${name}_sum` });
        out.push({ labels: { app }, value: t.count, metricName: `${name}_count` });
      }
      return out;
    };
    const metric = { name, help, type: 'histogram', aggregator: 'sum', get: () => Promise.resolve({ name, help, type: 'histogram', aggregator: 'sum', values: values() }), reset: () => this.apps.clear() };
    return metric as unknown as Metric;
  }
}
