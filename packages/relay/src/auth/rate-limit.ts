/**
 * Failed sign-in attempts counted in a sliding window per key (a user name, a
 * client address). Only failures count, so a user who types the password right
 * is never slowed down by their own success. Memory is bounded: the oldest
 * keys go first once `maxKeys` are tracked.
 */
export interface RateLimitOptions {
  /** Failures allowed within `windowMs`; the next attempt is refused. */
  limit: number;
  windowMs: number;
  clock: () => number;
  maxKeys?: number;
}

export class FailureLimiter {
  private readonly opts: Required<RateLimitOptions>;
  private readonly failures = new Map<string, number[]>();

  constructor(opts: RateLimitOptions) {
    this.opts = { maxKeys: 50_000, ...opts };
  }

  private recent(key: string): number[] {
    const since = this.opts.clock() - this.opts.windowMs;
    const list = (this.failures.get(key) ?? []).filter((t) => t > since);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }

  /** 0 when an attempt may go ahead, else milliseconds until it may. */
  retryAfter(key: string): number {
    const list = this.recent(key);
    if (list.length < this.opts.limit) return 0;
    return Math.max(1, list[list.length - this.opts.limit]! + this.opts.windowMs - this.opts.clock());
  }

  fail(key: string): void {
    const list = this.recent(key);
    list.push(this.opts.clock());
    if (list.length > this.opts.limit) list.splice(0, list.length - this.opts.limit);
    this.failures.delete(key);
    if (this.failures.size >= this.opts.maxKeys) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(key, list);
  }

  reset(key: string): void {
    this.failures.delete(key);
  }
}
