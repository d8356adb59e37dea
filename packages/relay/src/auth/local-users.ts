/**
 * The relay's built-in users: scrypt password hashes (node:crypto, no native
 * addon), sign-in with failures rate-limited per user name and per client
 * address, and a cached view of users that the store's `user-changed` events
 * keep current, so disabling a user takes effect on their next request.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { AuthError, AuthErrorCode, RateLimitedError } from './errors.ts';
import { FailureLimiter } from './rate-limit.ts';
import type { LocalUser, Store } from '../store/types.ts';

export interface PasswordHashOptions {
  /** log2 of the scrypt cost N; 15 (32 MiB, ~0.1 s) by default. */
  logN?: number;
  r?: number;
  p?: number;
}

const DEFAULTS = { logN: 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const MAX_PASSWORD = 1024;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/**
 * Hashes a password for `LocalUser.passwordHash`, in PHC string format with
 * its parameters, so the cost can rise later without breaking stored hashes.
 *
 * @example
 * const passwordHash = await hashPassword(await readStdin());
 * await store.createUser({ name: 'ada', passwordHash, groups: ['staff'] });
 */
export async function hashPassword(password: string, options: PasswordHashOptions = {}): Promise<string> {
  if (password.length === 0 || password.length > MAX_PASSWORD) throw new AuthError(AuthErrorCode.passwordInvalid, `a password must have 1 to ${MAX_PASSWORD} characters`);
  const { logN, r, p } = { ...DEFAULTS, ...options };
  const salt = randomBytes(16);
  const key = await derive(password, salt, logN, r, p);
  return `$scrypt$ln=${logN},r=${r},p=${p}$${b64(salt)}$${b64(key)}`;
}

/** Whether `password` matches `hash`, in constant time. Throws `ERR_PASSWORD_HASH_INVALID` for a hash it cannot read. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(hash);
  if (!m) throw new AuthError(AuthErrorCode.passwordHashInvalid, 'the stored password hash is not in the $scrypt$ format this relay writes');
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounded so a crafted hash cannot make one sign-in take gigabytes.
  if (logN < 1 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 16) throw new AuthError(AuthErrorCode.passwordHashInvalid, 'the stored password hash has parameters outside the accepted bounds');
  if (password.length > MAX_PASSWORD) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const actual = await derive(password, Buffer.from(m[4]!, 'base64'), logN, r, p);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export interface LocalUsersOptions {
  store: Pick<Store, 'getUser' | 'getUserByName' | 'recordSignInFailure' | 'signInFailures' | 'clearSignInFailures' | 'pruneSignInFailures'>;
  clock: () => number;
  /** Failed attempts per user name within the window before sign-in is refused (default 5). */
  perUser?: number;
  /** Failed attempts per client address within the window (default 20). */
  perAddress?: number;
  /** Default 15 minutes. */
  windowMs?: number;
  /** How long a cached user is trusted without a `user-changed` event (default 30 s). */
  cacheMs?: number;
}

export class LocalUsers {
  private readonly store: LocalUsersOptions['store'];
  private readonly clock: () => number;
  private readonly cacheMs: number;
  private readonly byUser: FailureLimiter;
  private readonly byAddress: FailureLimiter;
  private readonly cache = new Map<string, { user: LocalUser | null; at: number }>();
  /** Spent on unknown names, so a missing user takes as long as a wrong password. */
  private dummy: Promise<string> | undefined;

  constructor(opts: LocalUsersOptions) {
    this.store = opts.store;
    this.clock = opts.clock;
    this.cacheMs = opts.cacheMs ?? 30_000;
    const windowMs = opts.windowMs ?? 15 * 60_000;
    this.byUser = new FailureLimiter({ store: opts.store, scope: 'user', limit: opts.perUser ?? 5, windowMs, clock: opts.clock });
    this.byAddress = new FailureLimiter({ store: opts.store, scope: 'address', limit: opts.perAddress ?? 20, windowMs, clock: opts.clock });
  }

  /**
   * The user whose name and password these are. Throws `ERR_SIGNIN_RATE_LIMITED`
   * (with `retryAfterMs`) before looking at the password when either limit is
   * reached, `ERR_SIGNIN_BAD_CREDENTIALS` for an unknown name or a wrong
   * password alike, `ERR_SIGNIN_USER_DISABLED` for a disabled user whose
   * password was right.
   */
  async authenticate(name: string, password: string, address: string): Promise<LocalUser> {
    const userKey = name.trim().toLowerCase();
    const wait = Math.max(...(await Promise.all([this.byUser.retryAfter(userKey), this.byAddress.retryAfter(address)])));
    if (wait > 0) throw new RateLimitedError('too many failed sign-in attempts; wait before trying again', wait);
    const user = userKey ? await this.store.getUserByName(name.trim()) : null;
    let ok = false;
    if (user) {
      try {
        ok = await verifyPassword(password, user.passwordHash);
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
      }
    } else {
      this.dummy ??= hashPassword('drawbridge-dummy-password');
      await verifyPassword(password, await this.dummy);
    }
    if (!user || !ok) {
      await Promise.all([this.byUser.fail(userKey), this.byAddress.fail(address)]);
      throw new AuthError(AuthErrorCode.badCredentials, 'unknown user name or wrong password');
    }
    if (user.disabled) throw new AuthError(AuthErrorCode.userDisabled, `user ${user.name} is disabled`);
    await this.byUser.reset(userKey);
    this.remember(user.id, user);
    return user;
  }

  /**
   * Deletes counted failures that have left the window; returns how many. One
   * pass serves both counts: they share the window, and pruning is not scoped.
   */
  pruneFailures(): Promise<number> {
    return this.byUser.prune();
  }

  private remember(id: string, user: LocalUser | null): void {
    this.cache.delete(id);
    if (this.cache.size >= 50_000) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, { user, at: this.clock() });
  }

  /** The current record of a user (null when deleted), cached briefly. */
  async get(id: string): Promise<LocalUser | null> {
    const known = this.peek(id);
    if (known !== undefined) return known;
    const user = await this.store.getUser(id);
    this.remember(id, user);
    return user;
  }

  /** The cached record (null when deleted) while it is fresh; undefined when only the store can tell. */
  peek(id: string): LocalUser | null | undefined {
    const hit = this.cache.get(id);
    return hit && this.clock() - hit.at < this.cacheMs ? hit.user : undefined;
  }

  /** The store reported a change to this user. */
  invalidate(id: string): void {
    this.cache.delete(id);
  }

  clear(): void {
    this.cache.clear();
  }
}
