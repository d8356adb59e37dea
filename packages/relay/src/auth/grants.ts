/**
 * Recent grants: the outcome of a successful access check, kept briefly per
 * session cookie, so that the next requests of a signed-in user are let
 * through synchronously instead of walking the whole check again (cookie
 * opening, revocation, user record, assignment, assertion, SSO header
 * rendering, each awaited).
 *
 * A grant never outlives what it was made of. The gate hands one out only
 * while all of these still hold, checked on every request: it is younger than
 * `ttlMs` and its session has not expired; the app is the same configuration
 * object (the catalog replaces an app's object when it changes); the
 * revocation cache says, without asking the store, that the session is not
 * revoked; and for a local session, the user cache still holds the very
 * record the identity was built from (a changed or disabled user is a new
 * record or a cache miss). Anything else takes the full check, which makes a
 * new grant. So a sign-out, a disabled user, a removed assignment or a changed
 * app takes effect on the next request exactly as without grants.
 *
 * Entries are replaced in place: a session that keeps working keeps its slot,
 * so the map does not gain and lose an entry per request or per second (see
 * performance.md, item 12); only new sessions evict the oldest slot.
 */
import type { AppConfig } from '@drawbridge/shared';
import type { RequestIdentity } from '../proxy/http-proxy.ts';
import type { LocalUser } from '../store/types.ts';
import type { UserIdentity } from './identity.ts';

export interface Grant {
  readonly app: AppConfig;
  /** What travels with the request (identity meta, assertion, headers to strip). */
  readonly ok: RequestIdentity;
  readonly identity: UserIdentity & { sid: string };
  /** The record a local session's identity was built from; undefined for OIDC sessions. */
  readonly user: LocalUser | undefined;
  /** Epoch ms after which the grant is not handed out: the earlier of its age limit and the session's expiry. */
  readonly until: number;
}

export interface GrantChecks {
  /** The revocation cache's answer for a session, without asking the store. */
  revoked(sid: string): boolean | undefined;
  /** The user cache's fresh record, without asking the store. */
  user(id: string): LocalUser | null | undefined;
}

export class RecentGrants {
  private readonly byToken = new Map<string, Grant>();
  private readonly clock: () => number;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly checks: GrantChecks;

  constructor(opts: { clock: () => number; checks: GrantChecks; ttlMs?: number; maxEntries?: number }) {
    this.clock = opts.clock;
    this.checks = opts.checks;
    this.ttlMs = opts.ttlMs ?? 1_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  /** The grant of this session cookie for `app`, if every fact it was made of still holds. */
  find(token: string, app: AppConfig): Grant | undefined {
    if (this.ttlMs === 0) return undefined;
    const g = this.byToken.get(token);
    if (g === undefined || g.app !== app || this.clock() >= g.until) return undefined;
    if (this.checks.revoked(g.identity.sid) !== false) return undefined;
    if (g.user !== undefined && this.checks.user(g.user.id) !== g.user) return undefined;
    return g;
  }

  /** Records a check that let a session's request through. */
  remember(token: string, app: AppConfig, ok: RequestIdentity, identity: UserIdentity, sessionExpiresAt: number, user: LocalUser | undefined): void {
    if (this.ttlMs === 0 || identity.sid === undefined) return;
    const grant: Grant = { app, ok, identity: identity as UserIdentity & { sid: string }, user, until: Math.min(this.clock() + this.ttlMs, sessionExpiresAt) };
    if (!this.byToken.has(token) && this.byToken.size >= this.maxEntries) this.byToken.delete(this.byToken.keys().next().value!);
    this.byToken.set(token, grant);
  }

  /** Drops the grants that can no longer be handed out; returns how many. */
  prune(): number {
    const now = this.clock();
    let n = 0;
    for (const [token, g] of this.byToken) {
      if (now < g.until) continue;
      this.byToken.delete(token);
      n++;
    }
    return n;
  }

  clear(): void {
    this.byToken.clear();
  }

  get size(): number {
    return this.byToken.size;
  }
}
