/**
 * The connector's own Prometheus metrics, served on a local port when asked
 * (`drawbridge-connector run --metrics-listen 127.0.0.1:9464`). Everything is
 * read at scrape time from the running parts.
 */
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunningConnector } from './service.ts';

export function createConnectorMetrics(running: RunningConnector): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'drawbridge_connector_' });
  new Gauge({
    name: 'drawbridge_connector_tunnel_connections',
    help: 'Tunnel connections to the relay, by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts: Record<string, number> = { ready: 0, connecting: 0, waiting: 0 };
      for (const c of running.connector.tunnel.status()) counts[c.state] = (counts[c.state] ?? 0) + 1;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'drawbridge_connector_streams_in_flight',
    help: 'Requests being forwarded right now',
    registers: [registry],
    collect() {
      this.set(running.connector.tunnel.status().reduce((n, c) => n + c.openStreams, 0));
    },
  });
  new Gauge({
    name: 'drawbridge_connector_certificate_expiry_seconds',
    help: 'Seconds until the client certificate expires',
    registers: [registry],
    collect() {
      this.set((Date.parse(new X509Certificate(running.state().cert).validTo) - Date.now()) / 1000);
    },
  });
  new Gauge({
    name: 'drawbridge_connector_config_age_seconds',
    help: 'Seconds since the last successful configuration pull',
    registers: [registry],
    collect() {
      const at = running.puller.lastPullAt;
      if (at !== undefined) this.set((Date.now() - at) / 1000);
    },
  });
  new Gauge({
    name: 'drawbridge_connector_apps',
    help: 'Applications in the current configuration',
    registers: [registry],
    collect() {
      this.set(running.puller.current()?.apps.length ?? 0);
    },
  });
  return registry;
}

/** Serves `/metrics` (and `/healthz`: 200 while at least one tunnel connection is ready). */
export async function serveConnectorMetrics(running: RunningConnector, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const registry = createConnectorMetrics(running);
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    if (req.url === '/healthz') {
      const ready = running.connector.tunnel.readyCount > 0;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ready ? 'ok\n' : 'no tunnel connection to the relay\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
