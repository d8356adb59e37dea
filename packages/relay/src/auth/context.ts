/**
 * The parts of user access, built once from validated settings and shared by
 * the access check (gate.ts) and the sign-in pages (sign-in.ts). Also the one
 * place that reads a session cookie into an identity.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { DEFAULT_SSO_HEADER_MAX_BYTES, type Preauth } from '@drawbridge/shared';
import type { AppCatalog } from '../catalog.ts';
import type { LocalUser, Store } from '../store/types.ts';
import { AssertionSigner, type AssertionOptions } from './assertion.ts';
import { AuthAudit } from './audit.ts';
import { AuthError, AuthErrorCode } from './errors.ts';
import { ActiveExchanges } from './exchanges.ts';
import { isSecure, readCookie, serializeCookie } from './http.ts';
import { localIdentity, sessionIdentity, type UserIdentity } from './identity.ts';
import { LocalUsers, type LocalUsersOptions } from './local-users.ts';
import { OidcClient, type OidcOptions } from './oidc.ts';
import { SessionRevocations } from './revocations.ts';
import { SessionCodec, type SessionData } from './sessions.ts';

/** Everything `createAccessGate` needs; what the serve composition passes in. */
export interface AccessGateOptions {
  store: Store;
  /** The same catalog the public listener routes with. */
  catalog: AppCatalog;
  logger: Logger;
  /** Epoch milliseconds; `Date.now` by default. */
  clock?: () => number;
  /** The OpenID Connect provider for `oidc` apps and bearer tokens; without it `oidc` apps cannot be signed in to. */
  oidc?: OidcOptions;
  /**
   * Host (no scheme, no port) of the central sign-in page, e.g. `login.example.com`.
   * It must resolve to the public listener and must not be an app host. The
   * relay signs users in there once and hands a session to each app host, so
   * the IdP needs only one redirect URI. Absent: each app host signs in itself.
   */
  signInHost?: string;
  session?: {
    /** Longest a session lives, whatever the ID token says (default 12 h). */
    maxAgeMs?: number;
    /** Rotation period of the cookie encryption keys; at least `maxAgeMs` (default 7 days). */
    keyPeriodMs?: number;
  };
  local?: Omit<LocalUsersOptions, 'store' | 'clock'>;
  assertion?: Omit<AssertionOptions, 'store' | 'clock'>;
  /** Bound on one rendered SSO header value (default 8 KiB). */
  maxSsoHeaderBytes?: number;
  /** Time a sign-in may take from redirect to callback (default 10 min). */
  signInTimeoutMs?: number;
  /** How often sign-out records of expired sessions and sign-in failures past their window are deleted (default 1 h; 0 never). */
  pruneIntervalMs?: number;
  /**
   * How long the outcome of a session's successful check is handed out again
   * synchronously while everything it was made of still holds (grants.ts;
   * default 1 s, 0 checks every request in full).
   */
  recentGrantMs?: number;
}

/** The host a flow runs on: the central sign-in host, or the app's own. */
export interface Site {
  host: string;
  central: boolean;
}

/** A session read from the request's cookie, or why there is none. */
export type SessionRead =
  | {
      identity: UserIdentity;
      session: SessionData;
      /** The cookie's value. */
      token: string;
      /** The record a local session's identity was built from (the cache hands out the same object until it changes). */
      user?: LocalUser;
    }
  | { reason: AuthErrorCode | undefined };

export class AuthContext {
  readonly store: Store;
  readonly catalog: AppCatalog;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly signInHost: string | undefined;
  readonly maxAgeMs: number;
  readonly signInTimeoutMs: number;
  readonly maxSsoHeaderBytes: number;
  readonly codec: SessionCodec;
  readonly revocations: SessionRevocations;
  readonly users: LocalUsers;
  readonly oidc: OidcClient | undefined;
  readonly signer: AssertionSigner;
  readonly audit: AuthAudit;
  readonly exchanges = new ActiveExchanges();

  constructor(opts: AccessGateOptions) {
    this.store = opts.store;
    this.catalog = opts.catalog;
    this.logger = opts.logger;
    this.clock = opts.clock ?? Date.now;
    this.signInHost = opts.signInHost?.toLowerCase();
    this.maxAgeMs = opts.session?.maxAgeMs ?? 12 * 3_600_000;
    const keyPeriodMs = opts.session?.keyPeriodMs ?? 7 * 86_400_000;
    if (!(this.maxAgeMs > 0) || keyPeriodMs < this.maxAgeMs) {
      throw new AuthError(AuthErrorCode.configInvalid, `session key period (${keyPeriodMs} ms) must be at least the session maximum age (${this.maxAgeMs} ms), which must be positive`);
    }
    if (this.signInHost !== undefined && (this.signInHost === '' || /[/:@\s]/.test(this.signInHost))) {
      throw new AuthError(AuthErrorCode.configInvalid, `sign-in host ${JSON.stringify(opts.signInHost)} must be a bare host name`);
    }
    if (opts.oidc && (!opts.oidc.issuer || !opts.oidc.clientId)) throw new AuthError(AuthErrorCode.configInvalid, 'OIDC needs an issuer and a client id');
    this.signInTimeoutMs = opts.signInTimeoutMs ?? 10 * 60_000;
    this.maxSsoHeaderBytes = opts.maxSsoHeaderBytes ?? DEFAULT_SSO_HEADER_MAX_BYTES;
    this.codec = new SessionCodec({ store: opts.store, clock: this.clock, keyPeriodMs });
    this.revocations = new SessionRevocations({ store: opts.store, clock: this.clock });
    this.users = new LocalUsers({ store: opts.store, clock: this.clock, ...opts.local });
    this.oidc = opts.oidc ? new OidcClient(opts.oidc, this.clock) : undefined;
    this.signer = new AssertionSigner({ store: opts.store, clock: this.clock, ...opts.assertion });
    this.audit = new AuthAudit(opts.store, opts.logger, this.clock);
  }

  /**
   * The identity of the session cookie `req` carries for `host`, if it is
   * valid, of the method `kind` (any when absent), not signed out, and (local users) of a user
   * who still exists and is enabled.
   */
  async readSession(req: IncomingMessage, host: string, kind?: Preauth): Promise<SessionRead> {
    const token = this.sessionToken(req);
    if (token === undefined) return { reason: undefined };
    let session: SessionData;
    try {
      session = await this.codec.openSession(token, host);
    } catch (err) {
      if (err instanceof AuthError) return { reason: err.code };
      throw err;
    }
    if (kind !== undefined && session.kind !== kind) return { reason: AuthErrorCode.sessionInvalid };
    if (await this.revocations.isRevoked(session.sid)) return { reason: AuthErrorCode.sessionRevoked };
    if (session.kind === 'oidc') return { identity: sessionIdentity(session), session, token };
    const user = await this.users.get(session.sub);
    if (!user || user.disabled) return { reason: AuthErrorCode.sessionUserGone };
    return { identity: localIdentity(user, session.sid), session, token, user };
  }

  /** The session cookie's value, unopened. */
  sessionToken(req: IncomingMessage): string | undefined {
    return readCookie(req, 'session', { secure: isSecure(req) });
  }

  sessionCookie(req: IncomingMessage, token: string, expiresAt: number): string {
    return serializeCookie('session', token, { secure: isSecure(req), maxAge: (expiresAt - this.clock()) / 1000 });
  }

  clearSessionCookie(req: IncomingMessage): string {
    return serializeCookie('session', '', { secure: isSecure(req), maxAge: 0 });
  }

  /** Ends a session everywhere and closes its open exchanges; returns how many were closed. */
  async endSession(session: SessionData): Promise<number> {
    // Close first: the revocation's own change event closes them too, and would leave nothing to count.
    const closed = this.exchanges.close({ sid: session.sid });
    await this.revocations.revoke(session.sid, session.expiresAt);
    return closed;
  }
}
