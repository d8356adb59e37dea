/**
 * Local users: scrypt hashes in PHC format, constant-time checks, bounded
 * parameters, sign-in with rate limits per user name and per address on a
 * real SQLite store, and the user cache following `user-changed`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthError, RateLimitedError } from '../src/auth/errors.ts';
import { hashPassword, LocalUsers, verifyPassword } from '../src/auth/local-users.ts';
import { FailureLimiter } from '../src/auth/rate-limit.ts';
import { openStore, type Store } from '../src/store/index.ts';

const code = (c: string) => (err: unknown) => err instanceof AuthError && err.code === c;

describe('password hashes', () => {
  it('hashes with scrypt in PHC format and verifies', async () => {
    const hash = await hashPassword('s3cret pass', { logN: 10 });
    assert.match(hash, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(await verifyPassword('s3cret pass', hash), true);
    assert.equal(await verifyPassword('s3cret pasS', hash), false);
    assert.notEqual(await hashPassword('s3cret pass', { logN: 10 }), hash, 'salted');
  });

  it('uses a cost of 2^15 by default', async () => {
    assert.match(await hashPassword('x'), /^\$scrypt\$ln=15,r=8,p=1\$/);
  });

  it('treats composed and decomposed accents as the same password', async () => {
    const hash = await hashPassword('caf\u00e9', { logN: 10 });
    assert.equal(await verifyPassword('cafe\u0301', hash), true);
  });

  it('refuses empty passwords and unreadable or unbounded hashes with stable codes', async () => {
    await assert.rejects(hashPassword(''), code('ERR_PASSWORD_INVALID'));
    await assert.rejects(verifyPassword('x', 'plain'), code('ERR_PASSWORD_HASH_INVALID'));
    await assert.rejects(verifyPassword('x', '$scrypt$ln=30,r=8,p=1$AAAA$AAAA'), code('ERR_PASSWORD_HASH_INVALID'));
  });
});

describe('failure limiter', () => {
  let store: Store;
  let t = 0;
  const limiter = (scope = 'user'): FailureLimiter => new FailureLimiter({ store, scope, limit: 2, windowMs: 1000, clock: () => t });
  before(async () => {
    store = await openStore(mkdtempSync(join(tmpdir(), 'drawbridge-limiter-')));
  });
  after(() => store.close());

  it('refuses after `limit` failures in the window and says when to retry', async () => {
    t = 0;
    const l = limiter();
    assert.equal(await l.retryAfter('k'), 0);
    await l.fail('k');
    t = 100;
    await l.fail('k');
    assert.equal(await l.retryAfter('k'), 900, 'until the oldest failure leaves the window');
    t = 999;
    assert.equal(await l.retryAfter('k'), 1);
    t = 1000;
    assert.equal(await l.retryAfter('k'), 0);
    await l.fail('k');
    await l.reset('k');
    assert.equal(await l.retryAfter('k'), 0);
  });

  it('counts through the store, so every relay sees the same failures; scopes stay apart; prune drops what left the window', async () => {
    t = 10_000;
    const mine = limiter();
    const theirs = limiter();
    await mine.fail('ada');
    await theirs.fail('ada');
    assert.ok((await mine.retryAfter('ada')) > 0, 'one failure on each relay is two');
    assert.equal(await limiter('address').retryAfter('ada'), 0, 'another scope counts on its own');
    t = 12_000;
    assert.equal(await mine.prune(), 2);
    assert.equal(await mine.prune(), 0);
  });

  it('keeps digests, not user names or addresses', async () => {
    t = 20_000;
    await limiter().fail('grace@example.com');
    const rows = await store.signInFailures(`user:${createHash('sha256').update('grace@example.com').digest('base64url')}`, 0, 10);
    assert.deepEqual(rows, [20_000]);
    assert.deepEqual(await store.signInFailures('grace@example.com', 0, 10), [], 'the plain name is no key');
  });
});

describe('local user sign-in', () => {
  let store: Store;
  let t = 0;
  before(async () => {
    store = await openStore(mkdtempSync(join(tmpdir(), 'drawbridge-users-')));
    const passwordHash = await hashPassword('right', { logN: 10 });
    await store.createUser({ name: 'ada', passwordHash, groups: ['staff'] });
    await store.createUser({ name: 'bob', passwordHash, disabled: true });
  });
  after(() => store.close());

  it('signs a user in by name and password', async () => {
    const users = new LocalUsers({ store, clock: () => t });
    const user = await users.authenticate(' ada ', 'right', '10.0.0.1');
    assert.equal(user.name, 'ada');
  });

  it('answers unknown names like wrong passwords, and a disabled user only after the right password', async () => {
    const users = new LocalUsers({ store, clock: () => t });
    await assert.rejects(users.authenticate('nobody', 'right', '10.0.0.2'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('ada', 'wrong', '10.0.0.2'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('bob', 'wrong', '10.0.0.2'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('bob', 'right', '10.0.0.2'), code('ERR_SIGNIN_USER_DISABLED'));
  });

  it('limits failures per user name and per address, before looking at the password', async () => {
    // The earlier tests' failures are in the store, where every relay's LocalUsers counts them: start past them.
    t += 60_001;
    const users = new LocalUsers({ store, clock: () => t, perUser: 2, perAddress: 3, windowMs: 60_000 });
    await assert.rejects(users.authenticate('ada', 'x', '10.0.0.3'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('ADA', 'x', '10.0.0.4'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('ada', 'right', '10.0.0.5'), (err: unknown) => err instanceof RateLimitedError && err.retryAfterMs > 0, 'the name is limited from any address');
    await assert.rejects(users.authenticate('n1', 'x', '10.0.0.6'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('n2', 'x', '10.0.0.6'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('n3', 'x', '10.0.0.6'), code('ERR_SIGNIN_BAD_CREDENTIALS'));
    await assert.rejects(users.authenticate('bob', 'right', '10.0.0.6'), code('ERR_SIGNIN_RATE_LIMITED'), 'the address is limited for any name');
    t += 60_001;
    assert.equal((await users.authenticate('ada', 'right', '10.0.0.6')).name, 'ada');
  });

  it('reads a changed user again once told', async () => {
    const users = new LocalUsers({ store, clock: () => t });
    const ada = (await store.getUserByName('ada'))!;
    assert.equal((await users.get(ada.id))?.disabled, false);
    await store.updateUser(ada.id, { disabled: true });
    assert.equal((await users.get(ada.id))?.disabled, false, 'cached');
    users.invalidate(ada.id);
    assert.equal((await users.get(ada.id))?.disabled, true);
    await store.updateUser(ada.id, { disabled: false });
  });
});
