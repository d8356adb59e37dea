/**
 * Several relays on one PostgreSQL: they share the CA, the applications and
 * the connectors, and a change made through one relay takes effect on the
 * tunnels another relay holds.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { text } from 'node:stream/consumers';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { registerConnector, type RunningConnector, startService } from '@drawbridge/connector';
import { hashToken } from '../packages/relay/src/store/index.ts';
import type { RunningRelay } from '../packages/relay/src/server/serve.ts';
import { appConfig, client, logger, type Origin, startOrigin } from './helpers/harness.ts';
import { serve, serveConfig } from './helpers/serve.ts';

const SERVER = process.env.DRAWBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describe('two relays on one PostgreSQL', () => {
  const database = `drawbridge_e2e_${process.pid}_${randomBytes(4).toString('hex')}`;
  let admin: pg.Client;
  let a: RunningRelay;
  let b: RunningRelay;
  let origin: Origin;
  let service: RunningConnector | undefined;
  const seen: Array<{ url: string; xff: string; forward: string | undefined; body: string }> = [];
  const wss = new WebSocketServer({ noServer: true });

  before(async () => {
    admin = new pg.Client({ connectionString: SERVER });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(SERVER);
    url.pathname = `/${database}`;
    origin = await startOrigin((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', xff: String(req.headers['x-forwarded-for']), forward: req.headers['x-drawbridge-relay-forward'] as string | undefined, body });
        res.end(`internal ${req.url}`);
      });
    });
    origin.server.on('upgrade', (req, socket, head) => {
      if (req.url === '/declined') {
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 8\r\nconnection: close\r\n\r\ndeclined');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (data: Buffer) => {
          if (data.toString() === 'close-me') ws.close(4321, 'bye from app');
          else ws.send(data);
        });
        ws.send(`hello ${String(req.headers['x-forwarded-for'])} ${String(req.headers['x-drawbridge-relay-forward'])}`);
      });
    });
    // Start one after the other and then at once: migrations and CA creation must agree either way.
    a = await serve(serveConfig({ database: url.toString() }));
    b = await serve(serveConfig({ database: url.toString() }));
  });

  after(async () => {
    await service?.stop(100);
    await b?.stop();
    await a?.stop();
    await origin?.close();
    await client.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it('share one connector CA', () => {
    assert.equal(a.caPin, b.caPin);
  });

  it('a connector registered through one relay is told about apps created through the other, serves users of both, and revocation on the other closes its tunnels', async () => {
    // Token minted on B, registration and tunnels on A.
    const secret = `dbt_${randomBytes(32).toString('base64url')}`;
    const group = await b.store.ensureGroup('default');
    await b.store.createToken({ tokenHash: hashToken(secret), groupId: group.id, expiresAt: Date.now() + 60_000, uses: 1 });
    const dir = join(mkdtempSync(join(tmpdir(), 'drawbridge-multi-')), 'state');
    await registerConnector({ relayUrl: a.connectorUrl, token: secret, caPin: a.caPin, stateDir: dir });
    service = await startService({ stateDir: dir, logger, backoff: { initialMs: 50, maxMs: 200 } });
    const id = service.puller.current()!.connectorId;
    while (a.relay.registry.connections(id).length < 2) await once(a.events, 'open');

    // An app created through B reaches the connector on A through PostgreSQL's notifications.
    const pulled = once(service.puller, 'config');
    await b.store.createApp({ ...appConfig({ internalUrl: origin.url }), group: group.id });
    await pulled;
    const res = await request(`${a.relay.publicUrl}/via-a`, { headers: { host: 'hello.test' }, dispatcher: client });
    assert.equal(await res.body.text(), 'internal /via-a');

    // A user who reaches relay B, which has no tunnel of the group, is served through A.
    while (b.cluster.peersFor(group.id).length === 0) await once(b.cluster.events, 'peers');
    const viaB = await request(`${b.relay.publicUrl}/via-b?x=1`, { method: 'POST', body: 'payload', headers: { host: 'hello.test' }, dispatcher: client });
    assert.equal(viaB.statusCode, 200);
    assert.equal(await viaB.body.text(), 'internal /via-b?x=1');
    // A forged forwarding proof buys nothing: the header is checked, then stripped.
    const forged = await request(`${a.relay.publicUrl}/forged`, { headers: { host: 'hello.test', 'x-drawbridge-relay-forward': 'rly_x.1.00', 'x-forwarded-for': '6.6.6.6' }, dispatcher: client });
    assert.equal(await forged.body.text(), 'internal /forged');
    assert.ok(seen.some((h) => h.url === '/forged' && h.xff === '6.6.6.6, 127.0.0.1' && h.forward === undefined));
    // The app saw the user's address through both relays, and no relay-internal header.
    const forwarded = seen.find((h) => h.url === '/via-b?x=1')!;
    assert.equal(forwarded.forward, undefined);
    assert.equal(forwarded.xff, '127.0.0.1, 127.0.0.1', 'the user, then relay B');
    assert.equal(forwarded.body, 'payload');

    // A WebSocket opened on B is spliced through A's tunnel: frames and the app's close code arrive.
    const ws = new WebSocket(`${b.relay.publicUrl.replace('http', 'ws')}/socket`, { headers: { host: 'hello.test' } });
    const [greeting] = (await once(ws, 'message')) as [Buffer];
    // X-Forwarded-For names each hop, as for plain requests: the user, then relay B (both on loopback here).
    assert.equal(greeting.toString(), 'hello 127.0.0.1, 127.0.0.1 undefined', 'no relay-internal header reaches the app');
    ws.send('x'.repeat(200_000));
    const [echo] = (await once(ws, 'message')) as [Buffer];
    assert.equal(echo.length, 200_000);
    ws.send('close-me');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, 4321);
    assert.equal(reason.toString(), 'bye from app');
    // An upgrade the app declines comes back through both relays as the app's answer.
    const declined = new WebSocket(`${b.relay.publicUrl.replace('http', 'ws')}/declined`, { headers: { host: 'hello.test' } });
    const [handshake, answer] = (await once(declined, 'unexpected-response')) as [ClientRequest, IncomingMessage];
    assert.equal(answer.statusCode, 403);
    assert.equal(await text(answer), 'declined');
    handshake.destroy();

    // Revoked through B: A closes the tunnels within a second.
    const closed = Promise.all([once(a.events, 'close'), once(a.events, 'close')]);
    const started = performance.now();
    await b.store.revokeConnector(id, Date.now());
    await closed;
    assert.ok(performance.now() - started < 1000, `took ${Math.round(performance.now() - started)} ms`);
    assert.equal((await service.fatal).code, 'ERR_CERT_REVOKED');
  });
});
