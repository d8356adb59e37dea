/**
 * Recent grants (auth/grants.ts) through the real access gate on a real
 * SQLite store: a signed-in user's next request is let through synchronously
 * with the same identity, and every fact a grant was made of (its age, the
 * session's expiry and revocation, the user record, the app's configuration)
 * still decides the very next request after it changes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { AppConfig } from '@drawbridge/shared';
import { appConfig } from '../../../test/helpers/apps.ts';
import { RecentGrants } from '../src/auth/grants.ts';
import { createAccessGate, type UserAccessGate } from '../src/auth/index.ts';
import { REVOKED_PREFIX } from '../src/auth/revocations.ts';
import { SessionCodec } from '../src/auth/sessions.ts';
import { MemoryCatalog } from '../src/catalog.ts';
import type { RequestIdentity } from '../src/proxy/http-proxy.ts';
import { type LocalUser, openStore, type Store } from '../src/store/index.ts';

const HOST = 'wiki.example.com';

describe('recent grants', () => {
  let store: Store;
  let catalog: MemoryCatalog;
  let app: AppConfig;
  let user: LocalUser;
  let codec: SessionCodec;
  const now = { t: Date.UTC(2026, 10, 23, 12) };
  const clock = (): number => now.t;
  const gates: UserAccessGate[] = [];

  before(async () => {
    store = await openStore(mkdtempSync(join(tmpdir(), 'drawbridge-grants-')));
    user = await store.createUser({ name: 'ada', passwordHash: 'unused', groups: ['staff'] });
    codec = new SessionCodec({ store, clock, keyPeriodMs: 7 * 86_400_000 });
  });
  after(async () => {
    for (const g of gates) g.close();
    await store.close();
  });
  beforeEach(() => {
    app = appConfig({ id: 'app_wiki', name: 'wiki', externalHost: HOST, internalUrl: 'http://10.0.0.1/', group: 'g', preauth: 'local', headers: [{ name: 'X-Remote-User', value: '{name}' }], assignments: [{ kind: 'group', id: 'staff' }] });
    catalog = new MemoryCatalog([app]);
  });

  async function gate(recentGrantMs?: number): Promise<UserAccessGate> {
    const g = await createAccessGate({ store, catalog, logger: pino({ level: 'silent' }), clock, pruneIntervalMs: 0, ...(recentGrantMs === undefined ? {} : { recentGrantMs }) });
    gates.push(g);
    return g;
  }

  async function cookie(sid: string, expiresInMs = 3_600_000): Promise<string> {
    return `drawbridge_session=${await codec.sealSession({ sid, kind: 'local', sub: user.id, expiresAt: now.t + expiresInMs }, HOST)}`;
  }

  /** One request through the gate: whether it was decided synchronously, and the identity it goes on with (undefined: the gate answered it). */
  async function check(g: UserAccessGate, sessionCookie: string, target: AppConfig = app): Promise<{ sync: boolean; id: RequestIdentity | undefined; status: number }> {
    const req = new IncomingMessage(new Socket());
    req.method = 'GET';
    req.url = '/';
    req.headers = { host: HOST, cookie: sessionCookie, 'sec-fetch-mode': 'cors' };
    const res = new ServerResponse(req);
    const out = g.check(target, req, res, 'req_1');
    const sync = !(out instanceof Promise);
    const id = await out;
    return { sync, id, status: res.statusCode };
  }

  it('lets the next request of a session through synchronously with the same identity and tracks its exchange', async () => {
    const g = await gate();
    const c = await cookie('s-same');
    const first = await check(g, c);
    assert.equal(first.sync, false);
    assert.ok(first.id);
    const before = g.openExchanges;
    const second = await check(g, c);
    assert.equal(second.sync, true);
    assert.equal(second.id, first.id, 'the same identity, assertion and header rules');
    assert.equal(g.openExchanges, before + 1, 'a granted exchange is still tracked, so sign-out can close it');
  });

  it('checks in full again once the grant is older than its limit or the session has expired', async () => {
    const g = await gate();
    const c = await cookie('s-age', 2_000);
    await check(g, c);
    now.t += 999;
    assert.equal((await check(g, c)).sync, true);
    now.t += 1;
    const aged = await check(g, c);
    assert.equal(aged.sync, false);
    assert.ok(aged.id);
    now.t += 999;
    assert.equal((await check(g, c)).sync, true);
    now.t += 1;
    const expired = await check(g, c);
    assert.equal(expired.sync, false);
    assert.equal(expired.id, undefined, 'an expired session is refused, not granted');
    assert.equal(expired.status, 401);
  });

  it('refuses the next request after a sign-out recorded by another relay', async () => {
    const g = await gate();
    const c = await cookie('s-revoked');
    await check(g, c);
    assert.equal((await check(g, c)).sync, true);
    const changed = new Promise<void>((resolve) => {
      const off = store.subscribe((e) => e.type === 'setting-changed' && (off(), resolve()));
    });
    await store.setSetting(`${REVOKED_PREFIX}s-revoked`, String(now.t + 3_600_000));
    await changed;
    const next = await check(g, c);
    assert.equal(next.sync, false);
    assert.equal(next.id, undefined);
    assert.equal(next.status, 401);
  });

  it('follows a change of the user record: a renamed user gets new headers, a disabled one is refused', async () => {
    const g = await gate();
    const c = await cookie('s-user');
    const first = await check(g, c);
    const userChanged = (): Promise<void> =>
      new Promise<void>((resolve) => {
        const off = store.subscribe((e) => e.type === 'user-changed' && (off(), resolve()));
      });
    let changed = userChanged();
    user = await store.updateUser(user.id, { name: 'ada.lovelace' });
    await changed;
    const renamed = await check(g, c);
    assert.equal(renamed.sync, false);
    assert.notDeepEqual(renamed.id?.meta, first.id?.meta);
    assert.equal(renamed.id?.user, 'ada.lovelace');
    assert.equal((await check(g, c)).sync, true);
    changed = userChanged();
    user = await store.updateUser(user.id, { disabled: true });
    await changed;
    const disabled = await check(g, c);
    assert.equal(disabled.sync, false);
    assert.equal(disabled.id, undefined);
    user = await store.updateUser(user.id, { disabled: false, name: 'ada' });
  });

  it('follows a change of the app: a removed assignment gets 403 on the next request', async () => {
    const g = await gate();
    const c = await cookie('s-app');
    await check(g, c);
    assert.equal((await check(g, c)).sync, true);
    const narrowed: AppConfig = { ...app, assignments: [{ kind: 'user', id: 'someone-else' }] };
    catalog.upsert(narrowed);
    const next = await check(g, c, narrowed);
    assert.equal(next.sync, false);
    assert.equal(next.id, undefined);
    assert.equal(next.status, 403);
  });

  it('checks every request in full with recentGrantMs 0', async () => {
    const g = await gate(0);
    const c = await cookie('s-off');
    for (let i = 0; i < 3; i++) {
      const r = await check(g, c);
      assert.equal(r.sync, false);
      assert.ok(r.id);
    }
  });

  it('keeps at most maxEntries grants, replacing a live session’s grant in place, and prunes the ones that can no longer be used', () => {
    const t = { now: 0 };
    const grants = new RecentGrants({ clock: () => t.now, ttlMs: 1_000, maxEntries: 2, checks: { revoked: () => false, user: () => undefined } });
    const identity = { method: 'oidc' as const, sub: 'u', sid: 's' };
    const ok: RequestIdentity = { meta: [] };
    grants.remember('a', app, ok, identity, Number.MAX_SAFE_INTEGER, undefined);
    grants.remember('b', app, ok, identity, Number.MAX_SAFE_INTEGER, undefined);
    grants.remember('a', app, ok, identity, Number.MAX_SAFE_INTEGER, undefined);
    assert.equal(grants.size, 2);
    grants.remember('c', app, ok, identity, Number.MAX_SAFE_INTEGER, undefined);
    assert.equal(grants.size, 2);
    assert.equal(grants.find('a', app), undefined, 'the oldest slot went first');
    assert.ok(grants.find('b', app));
    assert.ok(grants.find('c', app));
    assert.equal(grants.find('c', { ...app }), undefined, 'another configuration object of the app');
    t.now = 1_000;
    assert.equal(grants.prune(), 2);
    assert.equal(grants.size, 0);
  });
});
