/**
 * Starts a real relay, real connectors and a real origin on loopback, all with
 * TLS certificates generated for the test. Everything listens on port 0.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter, once } from 'node:events';
import type { AppConfig } from '@drawbridge/shared';
import { type Connector, type ConnectorOptions, startConnector, staticConfig } from '@drawbridge/connector';
import { MemoryCatalog, type Relay, type RelayOptions, startRelay } from '@drawbridge/relay';
import { pino } from 'pino';
import { request, Agent } from 'undici';
import { appConfig, connectorConfig } from './apps.ts';
import { createTestPki, type TestPki } from './pki.ts';

export const logger = pino({ level: process.env.DRAWBRIDGE_TEST_LOG ?? 'silent' });

let sharedPki: TestPki | undefined;
/** One PKI per test process: key generation is the slow part. */
export function pki(): TestPki {
  return (sharedPki ??= createTestPki());
}

export interface Origin {
  server: http.Server;
  url: string;
  close(): Promise<void>;
}

export async function startOrigin(handler: http.RequestListener): Promise<Origin> {
  const server = http.createServer({ requestTimeout: 0 }, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface Stack {
  relay: Relay;
  /** 'open' and 'close' with the TunnelConnection, as the relay sees tunnels come and go. */
  events: EventEmitter;
  catalog: MemoryCatalog;
  connectors: Connector[];
  apps: AppConfig[];
  /** Starts one more connector of the test group. */
  addConnector(opts?: Partial<ConnectorOptions>): Promise<Connector>;
  close(): Promise<void>;
}

export interface StackOptions {
  apps: AppConfig[];
  connectors?: number;
  relay?: Partial<RelayOptions>;
  connector?: Partial<ConnectorOptions>;
}

let connectorSeq = 0;

export async function startStack(opts: StackOptions): Promise<Stack> {
  const p = pki();
  const server = p.server(['localhost', '127.0.0.1', '::1']);
  const catalog = new MemoryCatalog(opts.apps);
  const events = new EventEmitter();
  const relay = await startRelay({
    onConnection: (conn, event) => events.emit(event, conn),
    public: { host: '127.0.0.1', port: 0 },
    connector: { host: '127.0.0.1', port: 0, tls: { cert: server.chain, key: server.key, ca: p.ca.cert } },
    catalog,
    logger,
    shutdownGraceMs: 1_000,
    ...opts.relay,
  });
  const connectors: Connector[] = [];
  const addConnector = async (extra: Partial<ConnectorOptions> = {}): Promise<Connector> => {
    const id = `con_${++connectorSeq}`;
    const client = p.client({ cn: id, group: 'test-group' });
    const c = startConnector({
      relayUrl: relay.connectorUrl,
      credentials: { cert: client.cert, key: client.key, ca: p.ca.cert },
      config: staticConfig(connectorConfig(opts.apps, { connectorId: id })),
      connections: 2,
      backoff: { initialMs: 50, maxMs: 500 },
      logger,
      ...opts.connector,
      ...extra,
    });
    connectors.push(c);
    const want = extra.connections ?? opts.connector?.connections ?? 2;
    // Ready means the relay has registered the tunnels, not just that the connector got HELLO.
    await c.waitReady(want);
    while (relay.registry.connections(id).length < want) await once(events, 'open');
    return c;
  };
  for (let i = 0; i < (opts.connectors ?? 1); i++) await addConnector();
  return {
    relay,
    events,
    catalog,
    connectors,
    apps: opts.apps,
    addConnector,
    async close() {
      await Promise.all(connectors.map((c) => c.close(500)));
      await relay.close();
    },
  };
}

/** One dispatcher per test file, so keep-alive sockets do not outlive it. */
export const client = new Agent({ keepAliveTimeout: 1_000, connections: 256 });

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  trailers: Record<string, string | string[] | undefined>;
}

/** Sends a request to the relay's public listener for `host`. */
export async function fetchVia(relay: Relay, host: string, path: string, init: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer | NodeJS.ReadableStream | null } = {}): Promise<Fetched> {
  const res = await request(`${relay.publicUrl}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { host, ...init.headers },
    body: (init.body ?? null) as string | null,
    dispatcher: client,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, trailers: res.trailers };
}

export { appConfig, connectorConfig };

/** Sends raw bytes to the relay's public listener and returns everything it answers until close. */
export async function rawExchange(relay: Relay, text: string): Promise<{ status: number; head: string; body: string }> {
  const { connect } = await import('node:net');
  const url = new URL(relay.publicUrl);
  const sock = connect(Number(url.port), url.hostname);
  await once(sock, 'connect');
  sock.write(text);
  let raw = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => (raw += d));
  await once(sock, 'end');
  const split = raw.indexOf('\r\n\r\n');
  return { status: Number(raw.slice(9, 12)), head: raw.slice(0, split), body: raw.slice(split + 4) };
}

/** The configuration a connector `id` of the stack's group would pull. */
export function connectorConfigFor(stack: Stack, id: string): ReturnType<typeof connectorConfig> {
  return connectorConfig(stack.apps, { connectorId: id, connectorName: id });
}
