/**
 * Prometheus metrics of the relay, served on the admin listener's /metrics.
 * Gauges that describe live state (connections, queue, streams) are read at
 * scrape time from their owners instead of being kept in step by hand.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
  const requests = new Counter({ name: 'drawbridge_requests_total', help: 'User requests by app and status', labelNames: ['app', 'status'], registers: [registry] });
  const duration = new Histogram({
    name: 'drawbridge_request_duration_seconds',
    help: 'Time from request to end of response, by app',
    labelNames: ['app'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 90],
    registers: [registry],
  });
  const bytes = new Counter({ name: 'drawbridge_bytes_total', help: 'Body bytes by app and direction (in = from users)', labelNames: ['app', 'direction'], registers: [registry] });
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
      const app = s.app.name;
      requests.inc({ app, status: String(s.status) });
      duration.observe({ app }, (Date.now() - s.startedAt) / 1000);
      if (s.bytesIn) bytes.inc({ app, direction: 'in' }, s.bytesIn);
      if (s.bytesOut) bytes.inc({ app, direction: 'out' }, s.bytesOut);
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
