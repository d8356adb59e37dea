/**
 * A relay with the real access gate (SQLite store in a temp dir), a connector
 * and a header-verification app that echoes what it receives, the way an
 * operator checks header SSO. Apps are created in the store, so assignment
 * changes arrive through the store's change events like in production.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { AppConfig } from '@drawbridge/shared';
import { type AccessGateOptions, createAccessGate, type UserAccessGate } from '../../packages/relay/src/auth/index.ts';
import { openStore, type Store } from '../../packages/relay/src/store/index.ts';
import { MemoryCatalog } from '../../packages/relay/src/catalog.ts';
import { appConfig, logger, type Origin, type Stack, startOrigin, startStack } from './harness.ts';

export interface Echo {
  url: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface AuthStack {
  stack: Stack;
  store: Store;
  gate: UserAccessGate;
  origin: Origin;
  /** `sse-open` and `sse-close` from the echo app's event stream; `ws-close` from its WebSocket. */
  events: EventEmitter;
  /** Added to the gate's clock. */
  skew: { ms: number };
  port: string;
  url(host: string, path?: string): string;
  /** The app as stored (store id) and as routed (test connector group). */
  apps: Map<string, AppConfig>;
  /** Changes an app in the store and in the relay's catalog, as the serve composition's sync would. */
  updateApp(name: string, patch: Partial<AppConfig>): Promise<void>;
  close(): Promise<void>;
}

export type AppSpec = Partial<AppConfig> & Pick<AppConfig, 'name' | 'externalHost'>;

export interface AuthStackOptions {
  /** The store as the gate sees it, made from the real one (e.g. one whose reads fail on demand); the stack's `store` stays the real one. */
  gateStore?: (store: Store) => Store;
}

function echoApp(events: EventEmitter): { handler: http.RequestListener; upgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void } {
  const wss = new WebSocketServer({ noServer: true });
  return {
    handler(req, res) {
      if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write('data: open\n\n');
        events.emit('sse-open');
        res.on('close', () => events.emit('sse-close'));
        return;
      }
      const body = JSON.stringify({ url: req.url ?? '', method: req.method ?? '', headers: req.headers } satisfies Echo);
      const html = req.url?.startsWith('/page') === true;
      // `?img=URL` stands for user content on the page (an avatar, an image in a post).
      const img = new URL(req.url ?? '/', 'http://echo').searchParams.get('img');
      const out = html
        ? `<!doctype html><title>echo</title><h1>Header check</h1><pre id="headers">${JSON.stringify(req.headers, null, 1).replace(/</g, '&lt;')}</pre><a id="signout" href="/.well-known/drawbridge/signout">Sign out</a>${img === null ? '' : `<img id="user-content" alt="" src="${img.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')}">`}`
        : body;
      res.writeHead(200, { 'content-type': html ? 'text/html' : 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    },
    upgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(JSON.stringify({ headers: req.headers }));
        ws.on('message', (m) => ws.send(m));
        ws.on('close', () => events.emit('ws-close'));
      });
    },
  };
}

/**
 * Starts it all. The gate reaches an OIDC provider only on first use, so a
 * test IdP can register the relay's redirect URI once the port is known.
 */
export async function startAuthStack(specs: AppSpec[], gateOptions: Partial<AccessGateOptions> = {}, options: AuthStackOptions = {}): Promise<AuthStack> {
  const events = new EventEmitter();
  const echo = echoApp(events);
  const origin = await startOrigin(echo.handler);
  origin.server.on('upgrade', echo.upgrade);
  const store = await openStore(mkdtempSync(join(tmpdir(), 'drawbridge-auth-')));
  const group = await store.ensureGroup('test');
  const apps = new Map<string, AppConfig>();
  for (const spec of specs) {
    const { id: _id, ...fields } = appConfig({ internalUrl: origin.url, ...spec });
    const stored = await store.createApp({ ...fields, group: group.id });
    apps.set(spec.name, { ...stored, group: 'test-group', ...(spec.bearerAudience ? { bearerAudience: spec.bearerAudience } : {}) });
  }
  const catalog = new MemoryCatalog([...apps.values()]);
  const skew = { ms: 0 };
  const gate = await createAccessGate({ store: options.gateStore?.(store) ?? store, catalog, logger, clock: () => Date.now() + skew.ms, ...gateOptions });
  const stack = await startStack({ apps: [...apps.values()], relay: { catalog, gate, relayRoutes: gate.routes } });
  const port = new URL(stack.relay.publicUrl).port;
  return {
    stack,
    store,
    gate,
    origin,
    events,
    skew,
    port,
    apps,
    url: (host, path = '/') => `http://${host}:${port}${path}`,
    async updateApp(name, patch) {
      const app = apps.get(name)!;
      const { id: _id, group: _group, ...rest } = patch;
      const stored = await store.updateApp(app.id, rest);
      const next = { ...app, ...stored, group: app.group };
      apps.set(name, next);
      catalog.upsert(next);
    },
    async close() {
      gate.close();
      await stack.close();
      await origin.close();
      await store.close();
    },
  };
}
