/**
 * Sessions ended before their expiry (sign-out). Cookies are stateless, so an
 * ended session is recorded in the store (`auth.revoked.<sid>`), where every
 * relay sees it: at once through the store's `setting-changed` event, and on a
 * cache miss by reading it. A session is looked up at most once per
 * `recheckMs` per relay, so the request path rarely touches the database.
 */
import type { Store } from '../store/types.ts';

export const REVOKED_PREFIX = 'auth.revoked.';

interface Entry {
  revoked: boolean;
  checkedAt: number;
}

export interface RevocationOptions {
  store: Pick<Store, 'getSetting' | 'setSetting' | 'listSettings' | 'deleteSetting'>;
  clock: () => number;
  /** How long a "not revoked" answer is trusted without the store's event. */
  recheckMs?: number;
  /** Bound on cached sessions. */
  maxEntries?: number;
}

export class SessionRevocations {
  private readonly opts: Required<RevocationOptions>;
  private readonly cache = new Map<string, Entry>();

  constructor(opts: RevocationOptions) {
    this.opts = { recheckMs: 30_000, maxEntries: 100_000, ...opts };
  }

  private remember(sid: string, revoked: boolean): void {
    this.cache.delete(sid);
    if (this.cache.size >= this.opts.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(sid, { revoked, checkedAt: this.opts.clock() });
  }

  /** What the cache knows now without asking the store: undefined when only the store can tell. */
  peek(sid: string): boolean | undefined {
    const hit = this.cache.get(sid);
    return hit && (hit.revoked || this.opts.clock() - hit.checkedAt < this.opts.recheckMs) ? hit.revoked : undefined;
  }

  async isRevoked(sid: string): Promise<boolean> {
    const known = this.peek(sid);
    if (known !== undefined) return known;
    const revoked = (await this.opts.store.getSetting(REVOKED_PREFIX + sid)) !== null;
    this.remember(sid, revoked);
    return revoked;
  }

  /** Ends the session everywhere; `expiresAt` says when the record stops mattering. */
  async revoke(sid: string, expiresAt: number): Promise<void> {
    this.remember(sid, true);
    await this.opts.store.setSetting(REVOKED_PREFIX + sid, String(expiresAt));
  }

  /** The store said this setting changed: returns the session id it revoked, if it is one. */
  noteSettingChanged(key: string): string | undefined {
    if (!key.startsWith(REVOKED_PREFIX)) return undefined;
    const sid = key.slice(REVOKED_PREFIX.length);
    this.remember(sid, true);
    return sid;
  }

  /**
   * Deletes the records of sessions that have expired anyway: a cookie past its
   * expiry is refused without asking the store. Returns how many went. Any
   * relay may run it; several at once only delete the same rows twice.
   */
  async prune(): Promise<number> {
    const gone = await pruneExpired(this.opts.store, REVOKED_PREFIX, this.opts.clock());
    for (const key of gone) this.cache.delete(key.slice(REVOKED_PREFIX.length));
    return gone.length;
  }

  /** Notices may have been lost: forget every cached "not revoked". */
  clear(): void {
    for (const [sid, e] of this.cache) if (!e.revoked) this.cache.delete(sid);
  }
}

/**
 * Deletes the settings under `prefix` whose value starts with an expiry time
 * (epoch ms, optionally followed by `.` and more) at or before `now`; returns
 * their keys. A value that is not a time is kept: it cannot say it expired.
 */
export async function pruneExpired(store: Pick<Store, 'listSettings' | 'deleteSetting'>, prefix: string, now: number): Promise<string[]> {
  const gone: string[] = [];
  for (const { key, value } of await store.listSettings(prefix)) {
    const expiresAt = Number(value.split('.')[0]);
    if (!Number.isFinite(expiresAt) || value === '' || expiresAt > now) continue;
    if (await store.deleteSetting(key)) gone.push(key);
  }
  return gone;
}
