/**
 * Failed sign-in attempts counted in a sliding window per key (a user name, a
 * client address). Only failures count, so a user who types the password right
 * is never slowed down by their own success.
 *
 * The failures live in the store, so every relay of a deployment counts the
 * same attempts (an attacker's budget does not grow with the number of relays)
 * and a restart does not reset them. Keys are stored as digests: the table
 * holds no user names or addresses.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../store/types.ts';

export interface RateLimitOptions {
  store: Pick<Store, 'recordSignInFailure' | 'signInFailures' | 'clearSignInFailures' | 'pruneSignInFailures'>;
  /** Kind of key (`user`, `address`): keeps the two counts apart. */
  scope: string;
  /** Failures allowed within `windowMs`; the next attempt is refused. */
  limit: number;
  windowMs: number;
  clock: () => number;
}

export class FailureLimiter {
  private readonly opts: RateLimitOptions;

  constructor(opts: RateLimitOptions) {
    this.opts = opts;
  }

  private digest(key: string): string {
    return `${this.opts.scope}:${createHash('sha256').update(key).digest('base64url')}`;
  }

  /** 0 when an attempt may go ahead, else milliseconds until it may. */
  async retryAfter(key: string): Promise<number> {
    const { limit, windowMs, clock, store } = this.opts;
    const now = clock();
    const recent = await store.signInFailures(this.digest(key), now - windowMs, limit);
    if (recent.length < limit) return 0;
    // The oldest of the last `limit` failures has to leave the window.
    return Math.max(1, recent[0]! + windowMs - now);
  }

  async fail(key: string): Promise<void> {
    await this.opts.store.recordSignInFailure(this.digest(key), this.opts.clock());
  }

  async reset(key: string): Promise<void> {
    await this.opts.store.clearSignInFailures(this.digest(key));
  }

  /**
   * Deletes every failure, of any scope, that has left this limiter's window
   * (any relay may run it); limiters with the same window need only one run.
   */
  prune(): Promise<number> {
    return this.opts.store.pruneSignInFailures(this.opts.clock() - this.opts.windowMs);
  }
}
