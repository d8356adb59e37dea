/**
 * Bodies stream, never buffer: a 1 GiB download and a 1 GiB upload through
 * relay and connector (each in its own process, with the CLI's GC settings)
 * grow neither's peak RSS by 128 MiB, and once collected leave no more than
 * 8 MiB of buffers behind.
 *
 * Peak RSS includes buffers that are already garbage: with
 * tuneGcForStreaming, V8 lets tens of MiB of read buffers wait for a young
 * collection instead of forcing a full one (docs/performance.md, item 11), so
 * the peak bound is 128 MiB over a process warmed by a 256 MiB transfer;
 * buffering an eighth of the body would still break it, and the
 * after-collection check catches anything retained.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { client, type Origin, startOrigin } from './helpers/harness.ts';
import { type Child, peakWhile, spawnRelayAndConnector } from './helpers/processes.ts';

const GiB = 1024 ** 3;
const LIMIT = 128 * 1024 * 1024;
const RETAINED_LIMIT = 8 * 1024 * 1024;
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
    ({ relay, connector, publicUrl } = await spawnRelayAndConnector(origin.url, 'con_mem'));
    // Warm up pools, JIT and heap limits so the baseline is the steady state.
    const warm = await request(`${publicUrl}/download?bytes=${256 * 1024 * 1024}`, { headers: { host: 'hello.test' }, dispatcher: client });
    for await (const _ of warm.body);
  });

  after(async () => {
    await connector?.stop();
    await relay?.stop();
    await origin?.close();
    await client.close();
  });

  interface Growth {
    relay: number;
    connector: number;
    seconds: number;
    /** ArrayBuffer bytes after a full collection, against before. */
    retained: { relay: number; connector: number };
  }
  async function measure(run: () => Promise<void>): Promise<Growth> {
    // RSS first: the collection that counts the buffers would also shrink the heap below its working size.
    const base = { relay: await relay.rss(), connector: await connector.rss() };
    const buffers = { relay: await relay.buffersAfterGc(), connector: await connector.buffersAfterGc() };
    const started = performance.now();
    const done = run();
    const [relayPeak, connectorPeak] = await Promise.all([peakWhile(() => relay.rss(), done), peakWhile(() => connector.rss(), done)]);
    await done;
    const seconds = (performance.now() - started) / 1000;
    const retained = { relay: (await relay.buffersAfterGc()) - buffers.relay, connector: (await connector.buffersAfterGc()) - buffers.connector };
    return { relay: relayPeak - base.relay, connector: connectorPeak - base.connector, seconds, retained };
  }

  function check(growth: Growth): void {
    assert.ok(growth.relay < LIMIT, `relay grew ${growth.relay} bytes`);
    assert.ok(growth.connector < LIMIT, `connector grew ${growth.connector} bytes`);
    assert.ok(growth.retained.relay < RETAINED_LIMIT, `relay kept ${growth.retained.relay} bytes of buffers`);
    assert.ok(growth.retained.connector < RETAINED_LIMIT, `connector kept ${growth.retained.connector} bytes of buffers`);
  }
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1);

  it('1 GiB download', async (t) => {
    let received = 0;
    const growth = await measure(async () => {
      const res = await request(`${publicUrl}/download?bytes=${GiB}`, { headers: { host: 'hello.test' }, dispatcher: client });
      for await (const c of res.body) received += (c as Buffer).length;
    });
    t.diagnostic(`download: ${(1024 / growth.seconds).toFixed(0)} MiB/s, peak RSS growth relay ${mib(growth.relay)} MiB, connector ${mib(growth.connector)} MiB; buffers kept ${mib(growth.retained.relay)} / ${mib(growth.retained.connector)} MiB`);
    assert.equal(received, GiB);
    check(growth);
  });

  it('1 GiB upload', async (t) => {
    const growth = await measure(async () => {
      async function* body(): AsyncGenerator<Buffer> {
        for (let sent = 0; sent < GiB; sent += chunk.length) yield chunk;
      }
      const res = await request(`${publicUrl}/upload`, { method: 'POST', headers: { host: 'hello.test' }, body: Readable.from(body()), dispatcher: client });
      assert.equal(await res.body.text(), String(GiB));
    });
    t.diagnostic(`upload: ${(1024 / growth.seconds).toFixed(0)} MiB/s, peak RSS growth relay ${mib(growth.relay)} MiB, connector ${mib(growth.connector)} MiB; buffers kept ${mib(growth.retained.relay)} / ${mib(growth.retained.connector)} MiB`);
    assert.equal(uploaded, GiB);
    check(growth);
  });
});
