/**
 * Sealed tokens of user access on a real SQLite store: sessions, handoffs and
 * sign-in state, their host and purpose binding, expiry, tampering, key
 * rotation with overlap, keys shared by two relays on one store, and the
 * assertion's JWKS following the same rotation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { AppConfig } from '@drawbridge/shared';
import { appConfig } from '../../../test/helpers/apps.ts';
import { AssertionSigner } from '../src/auth/assertion.ts';
import { AuthError } from '../src/auth/errors.ts';
import { pruneExpired, SessionRevocations } from '../src/auth/revocations.ts';
import { SessionCodec, type SessionData } from '../src/auth/sessions.ts';
import { openStore, type Store } from '../src/store/index.ts';

const DAY = 86_400_000;
const PERIOD = 7 * DAY;

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof AuthError && err.code === code);
}

const app: AppConfig = appConfig({ id: 'app_1', name: 'hello', externalHost: 'hello.example.com', internalUrl: 'http://10.0.0.1/', group: 'g', preauth: 'oidc' });

describe('session tokens', () => {
  let store: Store;
  let other: Store;
  const now = { t: Date.UTC(2026, 0, 5) };
  const clock = (): number => now.t;
  const session = (over: Partial<SessionData> = {}): SessionData => ({ sid: 's1', kind: 'oidc', sub: 'ada', email: 'ada@example.com', groups: ['staff'], expiresAt: now.t + 3_600_000, ...over });

  before(async () => {
    store = await openStore(mkdtempSync(join(tmpdir(), 'drawbridge-auth-unit-')));
    other = await openStore(mkdtempSync(join(tmpdir(), 'drawbridge-auth-unit-')));
  });
  after(async () => {
    await store.close();
    await other.close();
  });

  it('opens what it sealed, for the same host only', async () => {
    const codec = new SessionCodec({ store, clock, keyPeriodMs: PERIOD });
    const token = await codec.sealSession(session(), 'hello.example.com');
    assert.deepEqual(await codec.openSession(token, 'hello.example.com'), session());
    await rejects(codec.openSession(token, 'other.example.com'), 'ERR_SESSION_WRONG_HOST');
    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, 'dir');
    assert.equal(header.enc, 'A256GCM');
    assert.ok(header.kid);
    assert.doesNotMatch(token, /ada/, 'the payload is encrypted');
  });

  it('refuses a tampered token, an expired one, and one sealed for another purpose', async () => {
    const codec = new SessionCodec({ store, clock, keyPeriodMs: PERIOD });
    const token = await codec.sealSession(session(), 'h');
    const parts = token.split('.');
    const ct = parts[3]!;
    parts[3] = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1);
    await rejects(codec.openSession(parts.join('.'), 'h'), 'ERR_SESSION_INVALID');
    await rejects(codec.openSession('garbage', 'h'), 'ERR_SESSION_INVALID');
    const handoff = await codec.sealHandoff({ session: session(), returnTo: '/', state: 'x'.repeat(24) }, 'h', 60_000);
    await rejects(codec.openSession(handoff, 'h'), 'ERR_SESSION_INVALID');
    const flow = await codec.sealFlow({ state: 's', nonce: 'n', verifier: 'v', returnTo: '/' }, 'h', 60_000);
    await rejects(codec.openHandoff(flow, 'h'), 'ERR_SESSION_INVALID');
    const later = new SessionCodec({ store, clock: () => now.t + 2 * 3_600_000, keyPeriodMs: PERIOD });
    await rejects(later.openSession(token, 'h'), 'ERR_SESSION_EXPIRED');
  });

  it('shares keys between relays on one store, and treats another deployment’s key as foreign', async () => {
    const a = new SessionCodec({ store, clock, keyPeriodMs: PERIOD });
    const b = new SessionCodec({ store, clock, keyPeriodMs: PERIOD });
    assert.equal((await b.openSession(await a.sealSession(session(), 'h'), 'h')).sub, 'ada');
    const foreign = new SessionCodec({ store: other, clock, keyPeriodMs: PERIOD });
    await rejects(foreign.openSession(await a.sealSession(session(), 'h'), 'h'), 'ERR_SESSION_FOREIGN_KEY');
  });

  it('rotates keys per period and keeps the previous one for overlap', async () => {
    const t0 = now.t;
    const codec = new SessionCodec({ store, clock, keyPeriodMs: PERIOD });
    const token = await codec.sealSession(session({ expiresAt: t0 + 30 * DAY }), 'h');
    try {
      now.t = t0 + PERIOD;
      const fresh = await codec.sealSession(session({ expiresAt: t0 + 30 * DAY }), 'h');
      assert.notEqual(decodeProtectedHeader(fresh).kid, decodeProtectedHeader(token).kid, 'a new period seals with a new key');
      assert.equal((await codec.openSession(token, 'h')).sub, 'ada', 'the previous key still opens');
      now.t = t0 + 2 * PERIOD;
      await rejects(codec.openSession(token, 'h'), 'ERR_SESSION_FOREIGN_KEY');
    } finally {
      now.t = t0;
    }
  });

  it('gives a handoff token a one-minute life and its id', async () => {
    const codec = new SessionCodec({ store, clock, keyPeriodMs: PERIOD });
    const token = await codec.sealHandoff({ session: session(), returnTo: '/x', state: 'st'.repeat(12) }, 'h', 60_000);
    const opened = await codec.openHandoff(token, 'h');
    assert.equal(opened.returnTo, '/x');
    assert.ok(opened.jti.length > 10);
    assert.equal(opened.expiresAt, now.t + 60_000);
    const late = new SessionCodec({ store, clock: () => now.t + 61_000, keyPeriodMs: PERIOD });
    await rejects(late.openHandoff(token, 'h'), 'ERR_SESSION_EXPIRED');
  });

  it('records a sign-out in the store, where another relay sees it', async () => {
    const mine = new SessionRevocations({ store, clock });
    const theirs = new SessionRevocations({ store, clock });
    assert.equal(await theirs.isRevoked('sid-9'), false);
    await mine.revoke('sid-9', now.t + 3_600_000);
    assert.equal(await mine.isRevoked('sid-9'), true);
    assert.equal(await theirs.isRevoked('sid-9'), false, 'a cached "not revoked" is trusted briefly…');
    assert.equal(theirs.noteSettingChanged('auth.revoked.sid-9'), 'sid-9', '…until the change event arrives');
    assert.equal(await theirs.isRevoked('sid-9'), true);
    assert.equal(theirs.noteSettingChanged('auth.session-key.1'), undefined);
  });

  it('prunes sign-out records once their sessions have expired, and keeps the rest', async () => {
    const t0 = now.t;
    const revocations = new SessionRevocations({ store, clock });
    await revocations.revoke('sid-old', t0 + 60_000);
    await revocations.revoke('sid-live', t0 + 7_200_000);
    await store.setSetting('auth.revoked.sid-odd', 'not a time');
    try {
      assert.equal(await revocations.prune(), 0, 'nothing has expired yet');
      now.t = t0 + 60_001;
      assert.equal(await revocations.prune(), 1);
      assert.equal(await store.getSetting('auth.revoked.sid-old'), null);
      assert.notEqual(await store.getSetting('auth.revoked.sid-live'), null, 'a session still inside its lifetime stays revoked');
      assert.equal(await revocations.isRevoked('sid-live'), true);
      assert.equal(await store.getSetting('auth.revoked.sid-odd'), 'not a time', 'a record it cannot read is kept, not guessed at');
      // Used handoff tokens are kept as `<expiresAt>.<nonce>`, pruned the same way.
      await store.setSetting('auth.handoff.j1', `${t0 + 60_000}.abc`);
      await store.setSetting('auth.handoff.j2', `${t0 + 120_000}.def`);
      assert.deepEqual(await pruneExpired(store, 'auth.handoff.', now.t), ['auth.handoff.j1']);
      assert.equal(await store.getSetting('auth.handoff.j2'), `${t0 + 120_000}.def`);
      await store.deleteSetting('auth.handoff.j2');
    } finally {
      now.t = t0;
      await store.deleteSetting('auth.revoked.sid-odd');
      await store.deleteSetting('auth.revoked.sid-live');
    }
  });

  it('signs assertions an app can verify with the JWKS, across a key rotation', async () => {
    const t0 = now.t;
    const signer = new AssertionSigner({ store, clock, issuer: 'https://relay.example.com', keyPeriodMs: PERIOD });
    const jwt = await signer.sign({ sub: 'ada', email: 'ada@example.com', groups: ['staff'] }, app, 'local');
    const jwks = await signer.jwks();
    assert.equal(jwks.keys.length, 2, 'current and next');
    assert.ok(jwks.keys.every((k) => k.d === undefined && k.alg === 'ES256' && k.use === 'sig'), 'public keys only');
    const verify = (token: string, keys: typeof jwks): ReturnType<typeof jwtVerify> =>
      jwtVerify(token, createLocalJWKSet(keys), { issuer: 'https://relay.example.com', audience: 'hello.example.com', currentDate: new Date(now.t) });
    const { payload } = await verify(jwt, jwks);
    assert.equal(payload.sub, 'ada');
    assert.match(payload.jti!, /^[\w-]{16}$/);
    assert.deepEqual(payload.amr, ['local']);
    try {
      now.t = t0 + PERIOD;
      const rotated = await signer.jwks();
      assert.equal(rotated.keys.length, 3, 'previous, current, next');
      assert.ok(rotated.keys.some((k) => k.kid === decodeProtectedHeader(jwt).kid), 'the old key stays published');
      const next = await signer.sign({ sub: 'ada' }, app, 'local');
      assert.ok(jwks.keys.some((k) => k.kid === decodeProtectedHeader(next).kid), 'the new key was published a period ahead');
    } finally {
      now.t = t0;
    }
  });

  it('reuses an assertion for the same user and app while half its lifetime remains, and signs anew on any change', async () => {
    const t0 = now.t;
    const signer = new AssertionSigner({ store, clock, ttlMs: 120_000, reuseMs: 90_000 });
    const ada = { sub: 'ada', email: 'ada@example.com', groups: ['staff'] };
    try {
      const first = await signer.sign(ada, app, 'local');
      now.t = t0 + 59_000;
      assert.equal(await signer.sign({ ...ada, groups: ['staff'] }, app, 'local'), first, 'same claims: the same assertion');
      assert.notEqual(await signer.sign({ ...ada, groups: ['staff', 'admins'] }, app, 'local'), first, 'changed groups');
      assert.notEqual(await signer.sign(ada, { ...app, externalHost: 'other.example.com' }, 'local'), first, 'another app host');
      assert.notEqual(await signer.sign(ada, app, 'oidc'), first, 'another sign-in method');
      now.t = t0 + 60_000;
      const later = await signer.sign(ada, app, 'local');
      assert.notEqual(later, first, 'reuse is capped at half the 120 s lifetime, not the 90 s asked for');
      const { payload } = await jwtVerify(later, createLocalJWKSet(await signer.jwks()), { currentDate: new Date(now.t + 119_000) });
      assert.notEqual(payload.jti, decodeJwt(first).jti, 'each assertion has its own jti');
      const none = new AssertionSigner({ store, clock, reuseMs: 0 });
      assert.notEqual(await none.sign(ada, app, 'local'), await none.sign(ada, app, 'local'), 'reuse 0: one per request');
      const small = new AssertionSigner({ store, clock, maxCached: 1 });
      const kept = await small.sign(ada, app, 'local');
      await small.sign({ sub: 'bob' }, app, 'local');
      assert.notEqual(await small.sign(ada, app, 'local'), kept, 'the cache is bounded: the oldest went first');
    } finally {
      now.t = t0;
    }
  });

  it('leaves the groups out of an assertion that would not fit a header', async () => {
    const signer = new AssertionSigner({ store, clock, maxBytes: 2048 });
    const groups = Array.from({ length: 200 }, (_, i) => `group-${i}`);
    const jwt = await signer.sign({ sub: 'ada', groups }, app, 'oidc');
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(await signer.jwks()), { currentDate: new Date(now.t) });
    assert.equal(payload.groups, undefined);
    assert.equal(payload.groups_omitted, true);
  });
});
