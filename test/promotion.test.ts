/**
 * Requests die young, also after a full collection under traffic.
 *
 * A long-lived container that gains and loses an entry per request (a `Map`
 * of open streams was one) can keep every request reachable from the old
 * generation once a full collection has moved it there: from then on young
 * collections promote each request instead of freeing it, and relay CPU per
 * request rose by half for good (docs/performance.md, item 12). Relay and
 * connector run in their own processes; a full collection runs in each in
 * the middle of a load, and the next 8,000 requests may not promote more
 * than 1 KiB each on average (healthy: tens of bytes; with the `Map`: about
 * 5 KiB on the relay).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { type Origin, startOrigin } from './helpers/harness.ts';
import { type Child, spawnRelayAndConnector } from './helpers/processes.ts';

const BODY = Buffer.alloc(1024, 0x61);
const CONCURRENCY = 50;
const PER_REQUEST_LIMIT = 1024;

describe('requests die young after a full collection under traffic', () => {
  let origin: Origin;
  let relay: Child;
  let connector: Child;
  let publicUrl: string;
  let pool: Pool;

  before(async () => {
    origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
      res.end(BODY);
    });
    ({ relay, connector, publicUrl } = await spawnRelayAndConnector(origin.url, 'con_promo'));
    pool = new Pool(publicUrl, { connections: CONCURRENCY, keepAliveTimeout: 10_000 });
  });

  after(async () => {
    await pool?.close();
    await connector?.stop();
    await relay?.stop();
    await origin?.close();
  });

  /** `total` 1 KiB requests, `CONCURRENCY` at a time; `onProgress(done)` after each. */
  async function load(total: number, onProgress?: (done: number) => void): Promise<void> {
    let started = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (started < total) {
        started += 1;
        const res = await pool.request({ path: '/', method: 'GET', headers: { host: 'hello.test' } });
        const body = Buffer.from(await res.body.arrayBuffer());
        assert.equal(res.statusCode, 200);
        assert.equal(body.length, BODY.length);
        done += 1;
        onProgress?.(done);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  it('promotes at most 1 KiB per request in relay and connector', async (t) => {
    await load(4000);
    // A full collection in each process while requests are in flight.
    let collecting: Promise<unknown> | undefined;
    await load(4000, (done) => {
      if (done === 1000) collecting = Promise.all([relay.collect(), connector.collect()]);
    });
    await collecting;
    await Promise.all([relay.countPromotion(), connector.countPromotion()]);
    const requests = 8000;
    await load(requests);
    const [r, c] = await Promise.all([relay.promotion(), connector.promotion()]);
    const perRequest = { relay: r.promoted / requests, connector: c.promoted / requests };
    t.diagnostic(
      `promoted per request: relay ${perRequest.relay.toFixed(0)} B (${r.young} young, ${r.full} full collections), connector ${perRequest.connector.toFixed(0)} B (${c.young} young, ${c.full} full)`,
    );
    assert.ok(r.young > 0 && c.young > 0, 'no young collection ran during the load: the measurement saw nothing');
    assert.ok(perRequest.relay < PER_REQUEST_LIMIT, `the relay promoted ${perRequest.relay.toFixed(0)} bytes per request`);
    assert.ok(perRequest.connector < PER_REQUEST_LIMIT, `the connector promoted ${perRequest.connector.toFixed(0)} bytes per request`);
  });
});
