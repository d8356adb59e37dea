/**
 * `X-Drawbridge-Assertion`: a short-lived JWT (ES256) the relay signs for each
 * request of a signed-in user, so an application can trust who the user is
 * even if someone reaches it without going through the relay. Keys rotate per
 * epoch (see keyring.ts) and are published at `/.well-known/drawbridge/jwks.json`
 * with the previous and next key alongside the current one.
 */
import { KeyObject, sign } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { AppConfig, SsoIdentity } from '@drawbridge/shared';
import { type KeyCodec, KeyRing } from './keyring.ts';
import type { Store } from '../store/types.ts';

interface SigningKey {
  privateKey: CryptoKey;
  /** The same key for node:crypto, which signs synchronously. */
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
    const privateKey = (await importJWK(jwk, 'ES256')) as CryptoKey;
    return { privateKey, keyObject: KeyObject.from(privateKey), publicJwk };
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
  /** The request id, also in `X-Drawbridge-Request-Id`. */
  jti: string;
}

export class AssertionSigner {
  readonly issuer: string;
  private readonly keys: KeyRing<SigningKey>;
  private readonly clock: () => number;
  private readonly ttlMs: number;
  private readonly maxBytes: number;

  constructor(opts: AssertionOptions) {
    this.issuer = opts.issuer ?? 'drawbridge';
    this.clock = opts.clock;
    this.ttlMs = opts.ttlMs ?? 120_000;
    this.maxBytes = opts.maxBytes ?? 6 * 1024;
    this.keys = new KeyRing({ store: opts.store, prefix: 'auth.signing-key', periodMs: opts.keyPeriodMs ?? 30 * 86_400_000, clock: opts.clock, codec: signingKeyCodec });
  }

  /**
   * Signs the assertion of one request.
   *
   * @example
   * const jwt = await signer.sign({ sub: 'usr_1', email: 'ada@example.com' }, app, 'local', requestId);
   * // the app: await jwtVerify(jwt, createRemoteJWKSet(new URL('https://app.example.com/.well-known/drawbridge/jwks.json')), { issuer, audience: 'app.example.com' })
   */
  async sign(identity: SsoIdentity, app: AppConfig, method: string, requestId: string): Promise<string> {
    const key = await this.keys.current();
    const now = Math.floor(this.clock() / 1000);
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
      claims.jti = requestId;
      return signEs256({ alg: 'ES256', kid: key.kid, typ: 'JWT' }, claims, key.key);
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
