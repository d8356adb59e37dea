/**
 * Losing parts of the tunnel: a connector process killed mid-response, one
 * tunnel connection lost. Only the streams on the lost part fail, with a clear
 * error; the relay survives and new requests go to what is left.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { appConfig, client, connectorConfigFor, fetchVia, type Origin, pki, type Stack, startOrigin, startStack } from './helpers/harness.ts';
import { type Child, spawnFixture } from './helpers/processes.ts';
import type { Connector } from '@drawbridge/connector';
import type { TunnelConnection } from '@drawbridge/relay';

/** The TLS context under each of a connector's tunnel connections (Node keeps it on the TLS handle as `_secureContext`). */
function tlsContexts(c: Connector): unknown[] {
  const slots = (c.tunnel as unknown as { slots: Array<{ ws?: { _socket?: { ssl?: { _secureContext?: unknown } } } }> }).slots;
  return slots.map((s) => s.ws?._socket?.ssl?._secureContext);
}

describe('resilience', () => {
  let origin: Origin;
  let stack: Stack;
  const release = Promise.withResolvers<void>();
  const neverArrivals = new EventEmitter();

  before(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first chunk;');
        void release.promise.then(() => res.end('last chunk'));
        return;
      }
      if (req.url === '/never') {
        neverArrivals.emit('never');
        return;
      }
      res.end('ok');
    });
    stack = await startStack({ apps: [appConfig({ internalUrl: origin.url })], connectors: 0, relay: { queue: { maxWaitMs: 2_000, maxLength: 100 } } });
  });

  after(async () => {
    release.resolve();
    await stack?.close();
    await origin?.close();
    await client.close();
  });

  async function spawnConnector(id: string): Promise<Child> {
    const cert = pki().client({ cn: id, group: 'test-group' });
    const opened = new Set<string>();
    const ready = new Promise<void>((resolve) => {
      const onOpen = (c: TunnelConnection): void => {
        if (c.connectorId !== id) return;
        opened.add(c.id);
        if (opened.size === 2) {
          stack.events.off('open', onOpen);
          resolve();
        }
      };
      stack.events.on('open', onOpen);
    });
    const child = await spawnFixture('run-connector', {
      relayUrl: stack.relay.connectorUrl,
      config: connectorConfigFor(stack, id),
      credentials: { cert: cert.cert, key: cert.key, ca: pki().ca.cert },
      connections: 2,
    });
    await ready;
    return child;
  }

  it('a connector killed mid-response fails only its requests; the other connector takes the next one', async () => {
    const a = await spawnConnector('con_a');
    try {
      // Both requests land on connector A: one is mid-body, one still waits for its head.
      const streaming = await request(`${stack.relay.publicUrl}/stream`, { headers: { host: 'hello.test' }, dispatcher: client });
      const body = streaming.body[Symbol.asyncIterator]();
      assert.equal(Buffer.from((await body.next()).value as Buffer).toString(), 'first chunk;');
      const waiting = fetchVia(stack.relay, 'hello.test', '/never');
      const b = await spawnConnector('con_b');
      try {
        const gone = Promise.all([once(stack.events, 'close'), once(stack.events, 'close')]);
        await a.kill();
        await gone;
        // The response that had started is cut short: the user sees an error, not a silent truncation.
        await assert.rejects(async () => {
          for (let r = await body.next(); !r.done; r = await body.next());
        });
        const lost = await waiting;
        assert.equal(lost.status, 502);
        assert.equal(lost.headers['x-drawbridge-error'], 'ERR_CONNECTOR_LOST');
        // The relay is fine and connector B serves the next request at once.
        assert.ok(stack.relay.registry.connections().every((c) => c.connectorId === 'con_b'));
        const next = await fetchVia(stack.relay, 'hello.test', '/');
        assert.equal(next.status, 200);
        assert.equal(next.body.toString(), 'ok');
      } finally {
        await b.stop();
      }
    } finally {
      await a.kill();
    }
  });

  it('losing one tunnel connection fails only its streams, and the connector reconnects', async () => {
    // One stream per connection: routing packs streams onto one connection, so this puts /never and /stream on two.
    const c = await stack.addConnector({ connections: 3, limits: { maxStreams: 1 } });
    try {
      const conns = stack.relay.registry.connections();
      assert.equal(conns.length, 3);
      const arrived = once(neverArrivals, 'never');
      const first = fetchVia(stack.relay, 'hello.test', '/never');
      await arrived;
      const neverConn = conns.find((x) => x.session.openStreams === 1)!;
      const streaming = await request(`${stack.relay.publicUrl}/stream`, { headers: { host: 'hello.test' }, dispatcher: client });
      assert.equal(conns.filter((x) => x.session.openStreams === 1).length, 2, 'one stream on each of two connections');

      const reopened = once(stack.events, 'open');
      neverConn.close(4005, 'test cut the connection');
      const lost = await first;
      assert.equal(lost.status, 502);
      assert.equal(lost.headers['x-drawbridge-error'], 'ERR_CONNECTOR_LOST');
      // New requests go through at once, on what is left.
      const ok = await fetchVia(stack.relay, 'hello.test', '/');
      assert.equal(ok.status, 200);
      // The stream on the other connection was untouched.
      release.resolve();
      assert.equal(await streaming.body.text(), 'first chunk;last chunk');
      await reopened; // the connector dialled again
      assert.equal(stack.relay.registry.connections().length, 3);
      // Every connection, the redialled one too, runs on the one TLS context made from the credentials.
      const contexts = tlsContexts(c);
      assert.equal(contexts.length, 3);
      assert.ok(contexts.every((x) => x !== undefined));
      assert.equal(new Set(contexts).size, 1);
    } finally {
      await c.close(200);
    }
  });
});
