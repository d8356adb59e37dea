/**
 * Sealed tokens of user access: the session cookie, the handoff token that
 * carries a sign-in from the central host to an app's host, the sign-in
 * state cookie of an OIDC flow, and the three tokens of a sign-out at the
 * provider (the kept ID token, the app host's word to the central host, the
 * `state` of the provider's round trip). All are JWTs encrypted with JWE
 * (`dir` + A256GCM, so authenticated too) under a rotating key named by `kid`,
 * bound by `aud` to the one host they were issued for and by the JWE `typ`
 * header to their purpose, so one can never stand in for another.
 */
import { randomBytes } from 'node:crypto';
import { EncryptJWT, errors, jwtDecrypt } from 'jose';
import type { ClaimValue } from '@drawbridge/shared';
import { AuthError, AuthErrorCode } from './errors.ts';
import { type KeyCodec, KeyRing } from './keyring.ts';
import type { Store } from '../store/types.ts';

/** How the user signed in. */
export type SessionKind = 'oidc' | 'local';

/** What a session cookie holds. Local sessions hold only who; the rest is read live from the store. */
export interface SessionData {
  /** Session id: shared by the central session and every app session handed off from it. */
  sid: string;
  kind: SessionKind;
  /** Local user id or the provider's `sub`. */
  sub: string;
  name?: string;
  email?: string;
  groups?: string[];
  claims?: Record<string, ClaimValue>;
  /** Epoch ms when the session ends (bounded by the identity token and the configured maximum). */
  expiresAt: number;
}

/** What travels from the sign-in host to an app host. */
export interface HandoffData {
  session: SessionData;
  /** Path (and query) on the app host to land on. */
  returnTo: string;
  /** The state the app host set in its cookie before sending the browser to sign in. */
  state: string;
}

/** An OIDC authorization request in progress, kept in a cookie on the host that started it. */
export interface FlowData {
  state: string;
  nonce: string;
  verifier: string;
  /** Where to go after sign-in: an app URL (central host) or a path (app host). */
  returnTo: string;
  /** Handoff state of the app host, when signing in centrally. */
  handoffState?: string;
}

/** The ID token of an OIDC session, kept (in a cookie of the relay's own path) for the `id_token_hint` of its sign-out at the provider. */
export interface IdTokenHintData {
  sid: string;
  idToken: string;
}

/** What an app host tells the central host when the user signed out there (not a request from another site). */
export interface SignOutHopData {
  sid: string;
}

/** A sign-out at the provider in progress: the `state` the provider hands back to the post-logout page. */
export interface LogoutData {
  /** Where "Sign in again" leads: an app URL (central host) or a path (app host); '' for nowhere. */
  returnTo: string;
}

type Purpose = 'session' | 'handoff' | 'flow' | 'hint' | 'hop' | 'logout';
const TYP: Record<Purpose, string> = {
  session: 'drawbridge-session+jwt',
  handoff: 'drawbridge-handoff+jwt',
  flow: 'drawbridge-flow+jwt',
  hint: 'drawbridge-id-hint+jwt',
  hop: 'drawbridge-signout-hop+jwt',
  logout: 'drawbridge-logout+jwt',
};

export const sessionKeyCodec: KeyCodec<Uint8Array> = {
  generate: async () => randomBytes(32).toString('base64url'),
  parse: async (s) => new Uint8Array(Buffer.from(s, 'base64url')),
};

export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

export interface SessionCodecOptions {
  store: Pick<Store, 'getSetting' | 'setSettingIfAbsent' | 'deleteSetting'>;
  clock: () => number;
  /** Key rotation period; must exceed the longest session. */
  keyPeriodMs: number;
}

/** Seals and opens the relay's encrypted tokens. */
/** Opened session cookies kept at once, and for how long (a retired key stops working within this). */
const OPENED_MAX = 10_000;
const OPENED_TTL_MS = 30_000;

export class SessionCodec {
  private readonly keys: KeyRing<Uint8Array>;
  private readonly clock: () => number;
  private readonly opened = new Map<string, { session: SessionData; exp: number; until: number }>();

  constructor(opts: SessionCodecOptions) {
    this.clock = opts.clock;
    this.keys = new KeyRing({ store: opts.store, prefix: 'auth.session-key', periodMs: opts.keyPeriodMs, clock: opts.clock, codec: sessionKeyCodec });
  }

  private async seal(purpose: Purpose, data: object, host: string, expiresAt: number): Promise<string> {
    const key = await this.keys.current();
    return new EncryptJWT({ d: data })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid, typ: TYP[purpose] })
      .setAudience(host)
      .setIssuedAt(Math.floor(this.clock() / 1000))
      .setExpirationTime(Math.ceil(expiresAt / 1000))
      .encrypt(key.key);
  }

  private async open(purpose: Purpose, token: string, host: string): Promise<{ data: unknown; jti?: string; exp: number }> {
    let result;
    try {
      result = await jwtDecrypt(
        token,
        async (header) => {
          const key = await this.keys.find(header.kid);
          if (!key) throw new AuthError(AuthErrorCode.sessionForeignKey, 'the token was sealed with a key this relay does not hold (rotated out or from another deployment)');
          return key.key;
        },
        { audience: host, typ: TYP[purpose], currentDate: new Date(this.clock()), keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] },
      );
    } catch (err) {
      if (err instanceof AuthError) throw err;
      if (err instanceof errors.JWTExpired) throw new AuthError(AuthErrorCode.sessionExpired, `the ${purpose} token has expired`);
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'aud') throw new AuthError(AuthErrorCode.sessionWrongHost, `the ${purpose} token was issued for another host`);
      throw new AuthError(AuthErrorCode.sessionInvalid, `the ${purpose} token is not valid (${(err as { code?: string }).code ?? 'malformed'})`);
    }
    const out: { data: unknown; jti?: string; exp: number } = { data: result.payload.d, exp: (result.payload.exp ?? 0) * 1000 };
    if (result.payload.jti !== undefined) out.jti = result.payload.jti;
    return out;
  }

  /** Loads (or creates) the keys, so a store problem shows at start, not at the first sign-in. */
  async ready(): Promise<void> {
    await this.keys.current();
  }

  sealSession(session: SessionData, host: string): Promise<string> {
    return this.seal('session', session, host, session.expiresAt);
  }

  /** The session of a cookie for `host`; throws `AuthError` (`ERR_SESSION_*`) otherwise. */
  async openSession(token: string, host: string): Promise<SessionData> {
    // Every request of a signed-in user carries the same cookie: decrypting it
    // each time was the relay's largest cost on pre-authenticated apps. The
    // result is kept briefly; expiry is checked again on every hit, and the
    // caller still checks revocation and the user record each time.
    const cacheKey = `${host} ${token}`;
    const now = this.clock();
    const hit = this.opened.get(cacheKey);
    if (hit) {
      if (now < hit.until && now < hit.exp) return hit.session;
      this.opened.delete(cacheKey);
    }
    const { data, exp } = await this.open('session', token, host);
    const session = checkSession(data);
    if (this.opened.size >= OPENED_MAX) this.opened.delete(this.opened.keys().next().value!);
    this.opened.set(cacheKey, { session, exp, until: now + OPENED_TTL_MS });
    return session;
  }

  /** A one-time token for `host`, valid `ttlMs`; its `jti` lets the receiver refuse a replay. */
  async sealHandoff(handoff: HandoffData, host: string, ttlMs: number): Promise<string> {
    const key = await this.keys.current();
    const exp = Math.min(handoff.session.expiresAt, this.clock() + ttlMs);
    return new EncryptJWT({ d: handoff })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid, typ: TYP.handoff })
      .setAudience(host)
      .setJti(randomBytes(12).toString('base64url'))
      .setIssuedAt(Math.floor(this.clock() / 1000))
      .setExpirationTime(Math.ceil(exp / 1000))
      .encrypt(key.key);
  }

  async openHandoff(token: string, host: string): Promise<HandoffData & { jti: string; expiresAt: number }> {
    const { data, jti, exp } = await this.open('handoff', token, host);
    const d = data as Partial<HandoffData> | undefined;
    if (!jti || !d || typeof d.returnTo !== 'string' || typeof d.state !== 'string') throw new AuthError(AuthErrorCode.sessionInvalid, 'the handoff token lacks its fields');
    const session = checkSession(d.session);
    return { session, returnTo: d.returnTo, state: d.state, jti, expiresAt: exp };
  }

  sealFlow(flow: FlowData, host: string, ttlMs: number): Promise<string> {
    return this.seal('flow', flow, host, this.clock() + ttlMs);
  }

  async openFlow(token: string, host: string): Promise<FlowData> {
    const { data } = await this.open('flow', token, host);
    const d = data as Partial<FlowData> | undefined;
    if (!d || typeof d.state !== 'string' || typeof d.nonce !== 'string' || typeof d.verifier !== 'string' || typeof d.returnTo !== 'string') {
      throw new AuthError(AuthErrorCode.sessionInvalid, 'the sign-in state lacks its fields');
    }
    return d as FlowData;
  }

  /** Lives as long as the session it belongs to. */
  sealIdTokenHint(hint: IdTokenHintData, host: string, expiresAt: number): Promise<string> {
    return this.seal('hint', hint, host, expiresAt);
  }

  async openIdTokenHint(token: string, host: string): Promise<IdTokenHintData> {
    const { data } = await this.open('hint', token, host);
    const d = data as Partial<IdTokenHintData> | undefined;
    if (!d || typeof d.sid !== 'string' || typeof d.idToken !== 'string') throw new AuthError(AuthErrorCode.sessionInvalid, 'the kept ID token lacks its fields');
    return { sid: d.sid, idToken: d.idToken };
  }

  sealSignOutHop(hop: SignOutHopData, host: string, ttlMs: number): Promise<string> {
    return this.seal('hop', hop, host, this.clock() + ttlMs);
  }

  async openSignOutHop(token: string, host: string): Promise<SignOutHopData> {
    const { data } = await this.open('hop', token, host);
    const d = data as Partial<SignOutHopData> | undefined;
    if (!d || typeof d.sid !== 'string') throw new AuthError(AuthErrorCode.sessionInvalid, 'the sign-out hop lacks its fields');
    return { sid: d.sid };
  }

  sealLogout(logout: LogoutData, host: string, ttlMs: number): Promise<string> {
    return this.seal('logout', logout, host, this.clock() + ttlMs);
  }

  async openLogout(token: string, host: string): Promise<LogoutData> {
    const { data } = await this.open('logout', token, host);
    const d = data as Partial<LogoutData> | undefined;
    if (!d || typeof d.returnTo !== 'string') throw new AuthError(AuthErrorCode.sessionInvalid, 'the sign-out state lacks its fields');
    return { returnTo: d.returnTo };
  }
}

function checkSession(data: unknown): SessionData {
  const s = data as Partial<SessionData> | undefined;
  if (!s || typeof s.sid !== 'string' || typeof s.sub !== 'string' || (s.kind !== 'oidc' && s.kind !== 'local') || typeof s.expiresAt !== 'number') {
    throw new AuthError(AuthErrorCode.sessionInvalid, 'the session lacks its fields');
  }
  return s as SessionData;
}
