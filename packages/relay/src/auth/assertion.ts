/**
 * `X-Drawbridge-Assertion`: a short-lived JWT (ES256) the relay signs for a
 * signed-in user and an app, so the application can trust who the user is
 * even if someone reaches it without going through the relay. Keys rotate per
 * epoch (see keyring.ts) and are published at `/.well-known/drawbridge/jwks.json`
 * with the previous and next key alongside the current one.
 *
 * One signature costs more than the rest of a proxied request, so a signed
 * assertion is handed out again to the same user for the same app while at
 * least half of its lifetime remains (`reuseMs`); any change to what it says
 * (claims, app host, signing key) signs a new one.
 */
import { createPrivateKey, type KeyObject, randomBytes, sign } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { AppConfig, SsoIdentity } from '@drawbridge/shared';
import { type KeyCodec, KeyRing } from './keyring.ts';
import type { Store } from '../store/types.ts';

interface SigningKey {
  /** node:crypto signs synchronously; WebCrypto would queue a job per signature. */
  keyObject: KeyObject;
  publicJwk: JWK;
}

/**
 * A compact JWS (ES256, raw r||s signature as RFC 7518 §3.4 requires), signed
 * with node:crypto. One assertion is signed per request; WebCrypto's
 * asynchronous job per signature cost several times the signature itself.
 */
function signEs256(header: Record<string, unknown>, claims: Record<string, unknown>, key: SigningKey): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(input), { key: key.keyObject, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

const signingKeyCodec: KeyCodec<SigningKey> = {
  async generate() {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    return JSON.stringify(await exportJWK(privateKey));
  },
  async parse(stored) {
    const jwk = JSON.parse(stored) as JWK;
    const { d: _d, ...publicJwk } = jwk;
    return { keyObject: createPrivateKey({ key: jwk, format: 'jwk' }), publicJwk };
  },
};

export interface AssertionOptions {
  store: Pick<Store, 'getSetting' | 'setSettingIfAbsent' | 'deleteSetting'>;
  clock: () => number;
  /** `iss` of every assertion (default `drawbridge`); set it to the relay's public URL. */
  issuer?: string;
  /** Lifetime of one assertion (default 120 s). */
  ttlMs?: number;
  /** Signing key rotation period (default 30 days). */
  keyPeriodMs?: number;
  /** An assertion larger than this drops its groups (`groups_omitted: true`) so it still fits a header (default 6 KiB). */
  maxBytes?: number;
  /**
   * How long a signed assertion is reused for the same user and app (default
   * 60 s, never more than half of `ttlMs`, so an app always gets one with at
   * least half its lifetime left). 0 signs one per request.
   */
  reuseMs?: number;
  /** Assertions kept for reuse at most; the oldest is dropped first (default 10,000). */
  maxCached?: number;
}

/** What an application finds in the assertion's payload. */
export interface AssertionClaims {
  iss: string;
  sub: string;
  /** The app's external host. */
  aud: string;
  /** The app's id. */
  app: string;
  email?: string;
  name?: string;
  groups?: string[];
  groups_omitted?: true;
  /** How the user signed in: `oidc`, `local` or `bearer`. */
  amr: string[];
  iat: number;
  exp: number;
  /** Unique per assertion (not per request: see `reuseMs`). */
  jti: string;
}

export class AssertionSigner {
  readonly issuer: string;
  private readonly keys: KeyRing<SigningKey>;
  private readonly clock: () => number;
  private readonly ttlMs: number;
  private readonly maxBytes: number;
  private readonly reuseMs: number;
  private readonly maxCached: number;
  /** Key → signed assertion and the time until which it is handed out again; insertion order is age. */
  private readonly cache = new Map<string, { jwt: string; reuseUntil: number }>();

  constructor(opts: AssertionOptions) {
    this.issuer = opts.issuer ?? 'drawbridge';
    this.clock = opts.clock;
    this.ttlMs = opts.ttlMs ?? 120_000;
    this.maxBytes = opts.maxBytes ?? 6 * 1024;
    this.reuseMs = Math.max(0, Math.min(opts.reuseMs ?? 60_000, this.ttlMs / 2));
    this.maxCached = opts.maxCached ?? 10_000;
    this.keys = new KeyRing({ store: opts.store, prefix: 'auth.signing-key', periodMs: opts.keyPeriodMs ?? 30 * 86_400_000, clock: opts.clock, codec: signingKeyCodec });
  }

  /**
   * The assertion for one request: a recent one for the same user and app, or
   * a newly signed one.
   *
   * @example
   * const jwt = await signer.sign({ sub: 'usr_1', email: 'ada@example.com' }, app, 'local');
   * // the app: await jwtVerify(jwt, createRemoteJWKSet(new URL('https://app.example.com/.well-known/drawbridge/jwks.json')), { issuer, audience: 'app.example.com' })
   */
  async sign(identity: SsoIdentity, app: AppConfig, method: string): Promise<string> {
    const key = await this.keys.current();
    const nowMs = this.clock();
    if (this.reuseMs === 0) return this.build(identity, app, method, key.kid, key.key, nowMs);
    // Everything the claims are made of, so a changed profile or group list signs anew.
    const cacheKey = JSON.stringify([key.kid, app.id, app.externalHost, method, identity.sub, identity.email, identity.name, identity.groups]);
    const hit = this.cache.get(cacheKey);
    if (hit && hit.reuseUntil > nowMs) return hit.jwt;
    if (hit) this.cache.delete(cacheKey);
    const jwt = this.build(identity, app, method, key.kid, key.key, nowMs);
    if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(cacheKey, { jwt, reuseUntil: nowMs + this.reuseMs });
    return jwt;
  }

  private build(identity: SsoIdentity, app: AppConfig, method: string, kid: string, key: SigningKey, nowMs: number): string {
    const now = Math.floor(nowMs / 1000);
    const jti = randomBytes(12).toString('base64url');
    const build = (withGroups: boolean): string => {
      const claims: Record<string, unknown> = { app: app.id, amr: [method] };
      if (identity.email) claims.email = identity.email;
      if (identity.name) claims.name = identity.name;
      if (withGroups && identity.groups) claims.groups = identity.groups;
      if (!withGroups) claims.groups_omitted = true;
      claims.iss = this.issuer;
      claims.sub = identity.sub;
      claims.aud = app.externalHost;
      claims.iat = now;
      claims.exp = now + Math.ceil(this.ttlMs / 1000);
      claims.jti = jti;
      return signEs256({ alg: 'ES256', kid, typ: 'JWT' }, claims, key);
    };
    const jwt = build(true);
    return jwt.length <= this.maxBytes || !identity.groups?.length ? jwt : build(false);
  }

  /** The public keys, as served at `/.well-known/drawbridge/jwks.json`. */
  async jwks(): Promise<{ keys: JWK[] }> {
    const keys = await this.keys.published();
    return { keys: keys.map((k) => ({ ...k.key.publicJwk, kid: k.kid, alg: 'ES256', use: 'sig' })) };
  }
}
