/**
 * Bodies stream, never buffer: a 1 GiB download and a 1 GiB upload through
 * relay and connector (each in its own process) grow neither's RSS by 64 MiB.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { appConfig, client, connectorConfig, type Origin, pki, startOrigin } from './helpers/harness.ts';
import { type Child, peakWhile, spawnFixture } from './helpers/processes.ts';

const GiB = 1024 ** 3;
const LIMIT = 64 * 1024 * 1024;
const chunk = Buffer.alloc(256 * 1024, 0x61);

describe('memory stays bounded on 1 GiB bodies', () => {
  let origin: Origin;
  let relay: Child;
  let connector: Child;
  let publicUrl: string;
  let uploaded = 0;

  before(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url?.startsWith('/download')) {
        const total = Number(new URL(req.url, 'http://x').searchParams.get('bytes'));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
        let sent = 0;
        const pump = (): void => {
          while (sent < total) {
            const n = Math.min(chunk.length, total - sent);
            sent += n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        uploaded = n;
        res.end(String(n));
      });
    });
    const p = pki();
    const server = p.server(['127.0.0.1']);
    const apps = [appConfig({ internalUrl: origin.url })];
    relay = await spawnFixture('run-relay', { apps, tls: { cert: server.chain, key: server.key, ca: p.ca.cert } });
    publicUrl = relay.ready.publicUrl as string;
    const cert = p.client({ cn: 'con_mem', group: 'test-group' });
    connector = await spawnFixture('run-connector', {
      relayUrl: relay.ready.connectorUrl,
      config: connectorConfig(apps, { connectorId: 'con_mem' }),
      credentials: { cert: cert.cert, key: cert.key, ca: p.ca.cert },
      connections: 2,
    });
    // Warm up pools, JIT and buffers so the baseline is the steady state.
    const warm = await request(`${publicUrl}/download?bytes=${32 * 1024 * 1024}`, { headers: { host: 'hello.test' }, dispatcher: client });
    for await (const _ of warm.body);
  });

  after(async () => {
    await connector?.stop();
    await relay?.stop();
    await origin?.close();
    await client.close();
  });

  async function measure(run: () => Promise<void>): Promise<{ relay: number; connector: number; seconds: number }> {
    const base = { relay: await relay.rss(), connector: await connector.rss() };
    const started = performance.now();
    const done = run();
    const [relayPeak, connectorPeak] = await Promise.all([peakWhile(() => relay.rss(), done), peakWhile(() => connector.rss(), done)]);
    await done;
    return { relay: relayPeak - base.relay, connector: connectorPeak - base.connector, seconds: (performance.now() - started) / 1000 };
  }

  it('1 GiB download', async (t) => {
    let received = 0;
    const growth = await measure(async () => {
      const res = await request(`${publicUrl}/download?bytes=${GiB}`, { headers: { host: 'hello.test' }, dispatcher: client });
      for await (const c of res.body) received += (c as Buffer).length;
    });
    t.diagnostic(`download: ${(1024 / growth.seconds).toFixed(0)} MiB/s, RSS growth relay ${(growth.relay / 2 ** 20).toFixed(1)} MiB, connector ${(growth.connector / 2 ** 20).toFixed(1)} MiB`);
    assert.equal(received, GiB);
    assert.ok(growth.relay < LIMIT, `relay grew ${growth.relay} bytes`);
    assert.ok(growth.connector < LIMIT, `connector grew ${growth.connector} bytes`);
  });

  it('1 GiB upload', async (t) => {
    const growth = await measure(async () => {
      async function* body(): AsyncGenerator<Buffer> {
        for (let sent = 0; sent < GiB; sent += chunk.length) yield chunk;
      }
      const res = await request(`${publicUrl}/upload`, { method: 'POST', headers: { host: 'hello.test' }, body: Readable.from(body()), dispatcher: client });
      assert.equal(await res.body.text(), String(GiB));
    });
    t.diagnostic(`upload: ${(1024 / growth.seconds).toFixed(0)} MiB/s, RSS growth relay ${(growth.relay / 2 ** 20).toFixed(1)} MiB, connector ${(growth.connector / 2 ** 20).toFixed(1)} MiB`);
    assert.equal(uploaded, GiB);
    assert.ok(growth.relay < LIMIT, `relay grew ${growth.relay} bytes`);
    assert.ok(growth.connector < LIMIT, `connector grew ${growth.connector} bytes`);
  });
});
