/**
 * Requests die young, also after a full collection under traffic.
 *
 * A long-lived container that gains and loses an entry per request (a `Map`
 * of open streams was one, a `Set` of signed-in exchanges another) can keep
 * every request reachable from the old generation once a full collection has
 * moved it there: from then on young collections promote each request
 * instead of freeing it, and relay CPU per request rose by half for good
 * (docs/performance.md, item 12). Relay and connector run in their own
 * processes; a full collection runs in each in the middle of a load, and the
 * next 8,000 requests may not promote more than 1 KiB each on average
 * (healthy: tens of bytes; with the `Map`: about 4 KiB on the relay). Both
 * a passthrough app and a pre-authenticated one with header rules, whose
 * requests also pass the access gate and its caches.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Pool } from 'undici';
import { type Origin, startOrigin } from './helpers/harness.ts';
import { type Child, spawnRelayAndConnector } from './helpers/processes.ts';
import { signInLocal } from './helpers/sign-in.ts';

const BODY = Buffer.alloc(1024, 0x61);
const CONCURRENCY = 50;
const PER_REQUEST_LIMIT = 1024;
const USER = { user: 'ada', password: 'promotion-test-password' };

describe('requests die young after a full collection under traffic', () => {
  const started: { relay: Child; connector: Child; pool: Pool }[] = [];
  let origin: Origin | undefined;

  after(async () => {
    for (const s of started) {
      await s.pool.close();
      await s.connector.stop();
      await s.relay.stop();
    }
    await origin?.close();
  });

  async function measure(t: { diagnostic(message: string): void }, auth: boolean): Promise<void> {
    origin ??= await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
      res.end(BODY);
    });
    const { relay, connector, publicUrl } = await spawnRelayAndConnector(origin.url, auth ? 'con_promo_auth' : 'con_promo', auth ? { auth: USER } : {});
    const pool = new Pool(publicUrl, { connections: CONCURRENCY, keepAliveTimeout: 10_000 });
    started.push({ relay, connector, pool });
    const headers: Record<string, string> = { host: 'hello.test' };
    if (auth) headers.cookie = await signInLocal(publicUrl, 'hello.test', USER.user, USER.password);

    /** `total` 1 KiB requests, `CONCURRENCY` at a time; `onProgress(done)` after each. */
    const load = async (total: number, onProgress?: (done: number) => void): Promise<void> => {
      let begun = 0;
      let done = 0;
      const worker = async (): Promise<void> => {
        while (begun < total) {
          begun += 1;
          const res = await pool.request({ path: '/', method: 'GET', headers });
          const body = Buffer.from(await res.body.arrayBuffer());
          assert.equal(res.statusCode, 200);
          assert.equal(body.length, BODY.length);
          done += 1;
          onProgress?.(done);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    };

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
      `${auth ? 'pre-auth' : 'passthrough'}: promoted per request: relay ${perRequest.relay.toFixed(0)} B (${r.young} young, ${r.full} full collections), connector ${perRequest.connector.toFixed(0)} B (${c.young} young, ${c.full} full)`,
    );
    assert.ok(r.young > 0 && c.young > 0, 'no young collection ran during the load: the measurement saw nothing');
    assert.ok(perRequest.relay < PER_REQUEST_LIMIT, `the relay promoted ${perRequest.relay.toFixed(0)} bytes per request`);
    assert.ok(perRequest.connector < PER_REQUEST_LIMIT, `the connector promoted ${perRequest.connector.toFixed(0)} bytes per request`);
  }

  it('passthrough: at most 1 KiB promoted per request in relay and connector', async (t) => {
    await measure(t, false);
  });

  it('pre-authenticated with header rules: at most 1 KiB promoted per request in relay and connector', async (t) => {
    await measure(t, true);
  });
});
