/**
 * Where the relay places a new stream (TunnelRegistry.pick): spread over a
 * group's connectors, packed onto each connector's connections, kept off a
 * connection that carries a bulk transfer, and never onto one that takes no
 * new streams. Sessions are reduced to the three counts routing reads; the
 * counts themselves are tested with real sessions in shared/test/session.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Session } from '@drawbridge/shared';
import { type TunnelConnection, TunnelRegistry } from '../src/tunnel/registry.ts';

interface Counts {
  openStreams: number;
  bulkStreams: number;
  maxStreams: number;
}

function connection(id: string, connectorId: string, counts: Partial<Counts> = {}): TunnelConnection & { counts: Counts } {
  const c: Counts = { openStreams: 0, bulkStreams: 0, maxStreams: 256, ...counts };
  const session = {
    get openStreams() {
      return c.openStreams;
    },
    get bulkStreams() {
      return c.bulkStreams;
    },
    get acceptsStreams() {
      return c.openStreams < c.maxStreams;
    },
    isOpen: true,
  } as unknown as Session;
  return { id, connectorId, connectorName: connectorId, groupId: 'g', serial: '01', version: undefined, remoteAddress: '127.0.0.1', connectedAt: 0, session, close: () => undefined, counts: c };
}

/** Places `n` streams (each stays open) and returns the connection ids in order. */
async function place(registry: TunnelRegistry, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    await registry.acquire('g', (conn) => {
      (conn as ReturnType<typeof connection>).counts.openStreams++;
      out.push(conn.id);
    });
  }
  return out;
}

describe('tunnel routing', () => {
  it('packs a connector’s streams onto one connection instead of spreading them', async () => {
    const r = new TunnelRegistry({ maxLength: 10, maxWaitMs: 1000 });
    const conns = ['a', 'b', 'c', 'd'].map((id) => connection(id, 'con_1'));
    for (const c of conns) r.add(c);
    assert.deepEqual(new Set(await place(r, 20)), new Set(['a']));
  });

  it('moves on when the packed connection is full, and keeps small streams off a connection carrying a bulk transfer', async () => {
    const r = new TunnelRegistry({ maxLength: 10, maxWaitMs: 1000 });
    const [a, b, c] = ['a', 'b', 'c'].map((id) => connection(id, 'con_1', { maxStreams: 4 }));
    for (const conn of [a!, b!, c!]) r.add(conn);
    assert.deepEqual(await place(r, 6), ['a', 'a', 'a', 'a', 'b', 'b']);
    // One of b's streams turns out to be a download at full speed.
    b!.counts.bulkStreams = 1;
    assert.deepEqual(await place(r, 2), ['c', 'c']);
    // Every connection that takes streams carries bulk: the least busy one.
    for (const [conn, open] of [[a!, 3], [b!, 2], [c!, 1]] as const) Object.assign(conn.counts, { openStreams: open, bulkStreams: 1 });
    assert.deepEqual(await place(r, 1), ['c']);
  });

  it('spreads streams over the connectors of a group by their open streams', async () => {
    const r = new TunnelRegistry({ maxLength: 10, maxWaitMs: 1000 });
    const conns = [connection('a1', 'con_a'), connection('a2', 'con_a'), connection('b1', 'con_b'), connection('b2', 'con_b')];
    for (const c of conns) r.add(c);
    const ids = await place(r, 20);
    const perConnector = { a: ids.filter((id) => id.startsWith('a')).length, b: ids.filter((id) => id.startsWith('b')).length };
    assert.deepEqual(perConnector, { a: 10, b: 10 });
    assert.deepEqual(new Set(ids), new Set(['a1', 'b1']), 'each connector packs onto one connection');
    // A connector already carrying more gets the next streams only once the other catches up.
    conns[0]!.counts.openStreams += 5;
    assert.deepEqual(new Set(await place(r, 5)), new Set(['b1']));
  });
});
