/**
 * An OpenID Connect relying party that works with any standard provider
 * (Entra ID, Okta, Google, Keycloak, Dex): discovery from the issuer URL,
 * authorization code flow with PKCE (S256), state and nonce, and ID tokens and
 * bearer access tokens verified with jose against the provider's JWKS
 * (signature, issuer, audience, expiry, nonce), and RP-initiated logout at the
 * provider's `end_session_endpoint`. Nothing provider-specific.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { ClaimValue, SsoIdentity } from '@drawbridge/shared';
import { AuthError, AuthErrorCode } from './errors.ts';

export interface OidcOptions {
  /** Issuer URL exactly as the provider states it (`https://login.example.com/realms/main`). */
  issuer: string;
  clientId: string;
  /** Absent for a public client (PKCE only). */
  clientSecret?: string;
  /** Default `openid email profile`. */
  scopes?: string[];
  /** Claim holding the user's groups; a dotted path reads nested claims (`realm_access.roles`). Default `groups`. */
  groupsClaim?: string;
  /** Also read the userinfo endpoint after sign-in (providers that keep claims out of the ID token). */
  fetchUserinfo?: boolean;
  /** Allowed clock difference with the provider, seconds (default 60). */
  clockToleranceSec?: number;
  /** Timeout of each call to the provider (default 10 s). */
  requestTimeoutMs?: number;
  /**
   * After sign-out, send the browser on to the provider's `end_session_endpoint`
   * (OpenID Connect RP-Initiated Logout 1.0) so that its session ends too.
   * Default true; without such an endpoint in discovery, sign-out stays at the relay.
   */
  providerLogout?: boolean;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
  end_session_endpoint?: unknown;
  token_endpoint_auth_methods_supported?: string[];
  id_token_signing_alg_values_supported?: string[];
}

/** The start of an authorization request: where to send the browser, and what to remember. */
export interface AuthorizationStart {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
}

/** JWT claims that describe the token, not the user: never copied into sessions or headers. */
const REGISTERED = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash', 'auth_time', 'azp', 'sid', 'acr', 'amr', 'typ', 'ver', 'uti', 'rh', 'tid', 'client_id', 'scope', 'scp', 'cnf']);
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

const random = (): string => randomBytes(32).toString('base64url');

function claimAt(claims: JWTPayload, path: string): unknown {
  if (path in claims) return claims[path];
  let v: unknown = claims;
  for (const p of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}

/**
 * The user a set of claims describes. `name` falls back to
 * `preferred_username`, then the email; an email the provider says is not
 * verified is dropped, so nobody can claim someone else's address.
 */
export function identityFromClaims(claims: JWTPayload, groupsClaim = 'groups'): SsoIdentity {
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new AuthError(AuthErrorCode.oidcInvalidToken, 'the token has no sub claim');
  const id: SsoIdentity = { sub: claims.sub };
  if (typeof claims.email === 'string' && claims.email_verified !== false && claims.email_verified !== 'false') id.email = claims.email;
  const name = [claims.name, claims.preferred_username, id.email].find((v): v is string => typeof v === 'string' && v !== '');
  if (name) id.name = name;
  const groups = claimAt(claims, groupsClaim);
  if (typeof groups === 'string') id.groups = [groups];
  else if (Array.isArray(groups)) id.groups = groups.filter((g): g is string => typeof g === 'string');
  const extra: Record<string, ClaimValue> = {};
  for (const [k, v] of Object.entries(claims)) {
    if (REGISTERED.has(k) || k === 'sub' || k === groupsClaim) continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') extra[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) extra[k] = v;
  }
  id.claims = extra;
  return id;
}

/** Maps jose's verdict on a token to our stable codes. */
function tokenError(err: unknown, what: string): AuthError {
  if (err instanceof AuthError) return err;
  if (err instanceof errors.JWTExpired) return new AuthError(AuthErrorCode.oidcTokenExpired, `the ${what} has expired`);
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return new AuthError(AuthErrorCode.oidcBadAudience, `the ${what} was issued for another audience`);
    if (err.claim === 'iss') return new AuthError(AuthErrorCode.oidcBadIssuer, `the ${what} comes from another issuer`);
    return new AuthError(AuthErrorCode.oidcInvalidToken, `the ${what} failed the "${err.claim}" check (${err.reason})`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) {
    return new AuthError(AuthErrorCode.oidcBadSignature, `the ${what}'s signature does not verify with the provider's keys`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new AuthError(AuthErrorCode.oidcBadSignature, `the ${what} is signed with an algorithm that is not accepted`);
  if (err instanceof errors.JWKSTimeout || (err instanceof errors.JOSEError && err.code === 'ERR_JWKS_INVALID')) {
    return new AuthError(AuthErrorCode.oidcUnavailable, `the provider's keys could not be fetched (${err.code})`);
  }
  return new AuthError(AuthErrorCode.oidcInvalidToken, `the ${what} is not a valid JWT (${(err as { code?: string }).code ?? (err as Error).message})`);
}

export class OidcClient {
  readonly opts: OidcOptions;
  private readonly clock: () => number;
  private discovery: Promise<{ doc: Discovery; jwks: JWTVerifyGetKey }> | undefined;
  private failedAt = 0;

  constructor(opts: OidcOptions, clock: () => number) {
    this.opts = opts;
    this.clock = clock;
  }

  /**
   * The discovery document's `field` as a URL the relay may use: absolute,
   * and https under an https issuer (http is for test providers only). A
   * relative or plain-http endpoint would otherwise fail later as a bare 500,
   * or send the client secret or the ID token in the clear. Throws
   * `ERR_OIDC_UNAVAILABLE` naming the field.
   */
  private endpoint(field: string, value: unknown): URL {
    const schemes = new URL(this.opts.issuer).protocol === 'https:' ? ['https:'] : ['https:', 'http:'];
    const url = typeof value === 'string' ? URL.parse(value) : null;
    if (url && schemes.includes(url.protocol)) return url;
    throw new AuthError(AuthErrorCode.oidcUnavailable, `the discovery document's ${field} is not an absolute ${schemes.length === 1 ? 'https' : 'http(s)'} URL (${String(value).slice(0, 100)})`);
  }

  private async fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 10_000) });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null) throw new AuthError(AuthErrorCode.oidcUnavailable, `${new URL(url).pathname} answered ${res.status} without a JSON object`);
    return { status: res.status, body: body as Record<string, unknown> };
  }

  /** Discovery document and key set, fetched once; a failure is retried after a few seconds. */
  private metadata(): Promise<{ doc: Discovery; jwks: JWTVerifyGetKey }> {
    if (!this.discovery && this.clock() - this.failedAt < 5_000) {
      return Promise.reject(new AuthError(AuthErrorCode.oidcUnavailable, 'the identity provider was unreachable moments ago'));
    }
    if (this.discovery) return this.discovery;
    this.discovery = (async () => {
      const url = `${this.opts.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      let doc: Discovery;
      try {
        doc = (await this.fetchJson(url)).body as unknown as Discovery;
      } catch (err) {
        throw err instanceof AuthError ? err : new AuthError(AuthErrorCode.oidcUnavailable, `discovery at ${url} failed (${(err as Error).message})`, { cause: err });
      }
      if (doc.issuer !== this.opts.issuer) throw new AuthError(AuthErrorCode.oidcBadIssuer, `the discovery document names issuer ${doc.issuer}, not the configured ${this.opts.issuer}`);
      for (const f of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
        if (typeof doc[f] !== 'string') throw new AuthError(AuthErrorCode.oidcUnavailable, `the discovery document has no ${f}`);
        this.endpoint(f, doc[f]);
      }
      return { doc, jwks: createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: this.opts.requestTimeoutMs ?? 10_000 }) };
    })();
    this.discovery.catch(() => {
      this.discovery = undefined;
      this.failedAt = this.clock();
    });
    return this.discovery;
  }

  /** Where to send the browser to sign in; `redirectUri` is this relay's callback on the host doing the flow. */
  async authorizationStart(redirectUri: string): Promise<AuthorizationStart> {
    const { doc } = await this.metadata();
    const start = { state: random(), nonce: random(), verifier: random() };
    const url = new URL(doc.authorization_endpoint);
    const q = url.searchParams;
    q.set('response_type', 'code');
    q.set('client_id', this.opts.clientId);
    q.set('redirect_uri', redirectUri);
    q.set('scope', (this.opts.scopes ?? ['openid', 'email', 'profile']).join(' '));
    q.set('state', start.state);
    q.set('nonce', start.nonce);
    q.set('code_challenge', createHash('sha256').update(start.verifier).digest('base64url'));
    q.set('code_challenge_method', 'S256');
    return { url: url.href, ...start };
  }

  /**
   * Where to send the browser so that the provider ends its own session
   * (RP-Initiated Logout 1.0), or undefined when the provider's discovery
   * document names no `end_session_endpoint`. The provider sends the browser
   * back to `postLogoutRedirectUri` (which must be registered there) with
   * `state`. `idTokenHint` is the ID token of the session when the relay
   * could keep it; `client_id` is always sent, so the provider can check the
   * redirect URI without it (it then asks the user to confirm). Throws
   * `AuthError` (`ERR_OIDC_UNAVAILABLE`) when discovery fails or the endpoint
   * is not a usable URL.
   *
   * @example
   * const url = await oidc.endSessionUrl('https://login.example.com/.well-known/drawbridge/signedout', state, idToken);
   * if (url) redirect(res, url, requestId, cookies);
   */
  async endSessionUrl(postLogoutRedirectUri: string, state: string, idTokenHint?: string): Promise<string | undefined> {
    const { doc } = await this.metadata();
    const endpoint = doc.end_session_endpoint;
    if (endpoint === undefined || endpoint === null) return undefined;
    const url = this.endpoint('end_session_endpoint', endpoint);
    if (url.username !== '' || url.password !== '') throw new AuthError(AuthErrorCode.oidcUnavailable, "the discovery document's end_session_endpoint carries credentials");
    const q = url.searchParams;
    if (idTokenHint !== undefined) q.set('id_token_hint', idTokenHint);
    q.set('client_id', this.opts.clientId);
    q.set('post_logout_redirect_uri', postLogoutRedirectUri);
    q.set('state', state);
    return url.href;
  }

  /** Whether sign-out goes on to the provider: not turned off, and discovery names an `end_session_endpoint`. False when discovery fails. */
  async offersLogout(): Promise<boolean> {
    if (this.opts.providerLogout === false) return false;
    const meta = await this.metadata().catch(() => undefined);
    return meta !== undefined && meta.doc.end_session_endpoint !== undefined && meta.doc.end_session_endpoint !== null;
  }

  /** Trades the code for tokens; returns the verified ID token's claims (merged with userinfo when configured) and the ID token itself. */
  async completeSignIn(code: string, redirectUri: string, expected: { nonce: string; verifier: string }): Promise<{ claims: JWTPayload; idToken: string }> {
    const { doc } = await this.metadata();
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: expected.verifier });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const { clientId, clientSecret } = this.opts;
    const methods = doc.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
    if (clientSecret !== undefined && (methods.includes('client_secret_basic') || !methods.includes('client_secret_post'))) {
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
    } else {
      form.set('client_id', clientId);
      if (clientSecret !== undefined) form.set('client_secret', clientSecret);
    }
    let answer;
    try {
      answer = await this.fetchJson(doc.token_endpoint, { method: 'POST', headers, body: form.toString() });
    } catch (err) {
      throw new AuthError(AuthErrorCode.oidcTokenExchange, `the token endpoint could not be reached (${(err as Error).message})`, { cause: err });
    }
    const idToken = answer.body.id_token;
    if (answer.status !== 200 || typeof idToken !== 'string') {
      const why = typeof answer.body.error === 'string' ? answer.body.error : `HTTP ${answer.status}`;
      throw new AuthError(AuthErrorCode.oidcTokenExchange, `the provider refused the authorization code (${why})`);
    }
    const claims = await this.verifyIdToken(idToken, expected.nonce);
    const accessToken = answer.body.access_token;
    if (this.opts.fetchUserinfo && doc.userinfo_endpoint && typeof accessToken === 'string') {
      const info = await this.fetchJson(doc.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } }).catch(() => undefined);
      // Userinfo for another subject would be a provider bug or an attack: ignore it.
      if (info?.status === 200 && info.body.sub === claims.sub) return { claims: { ...info.body, ...claims }, idToken };
    }
    return { claims, idToken };
  }

  /**
   * Verifies an ID token: signature with the provider's keys, issuer, audience
   * (this client), expiry, `azp` when there are several audiences, and the
   * nonce of the flow. Throws `AuthError` with `ERR_OIDC_*` codes.
   */
  async verifyIdToken(idToken: string, nonce: string): Promise<JWTPayload> {
    const { doc, jwks } = await this.metadata();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, jwks, {
        issuer: this.opts.issuer,
        audience: this.opts.clientId,
        algorithms: doc.id_token_signing_alg_values_supported?.filter((a) => ASYMMETRIC.includes(a)) ?? ['RS256'],
        currentDate: new Date(this.clock()),
        clockTolerance: this.opts.clockToleranceSec ?? 60,
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (err) {
      throw tokenError(err, 'ID token');
    }
    if (payload.nonce !== nonce) throw new AuthError(AuthErrorCode.oidcBadNonce, 'the ID token does not carry the nonce of this sign-in');
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== this.opts.clientId) {
      throw new AuthError(AuthErrorCode.oidcBadAudience, 'the ID token was issued to another authorized party');
    }
    return payload;
  }

  /** Verifies a bearer JWT of the provider for `audience` (an API's identifier); returns its claims. */
  async verifyAccessToken(token: string, audience: string): Promise<JWTPayload> {
    const { jwks } = await this.metadata();
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: this.opts.issuer,
        audience,
        algorithms: ASYMMETRIC,
        currentDate: new Date(this.clock()),
        clockTolerance: this.opts.clockToleranceSec ?? 60,
        requiredClaims: ['sub', 'exp'],
      });
      return payload;
    } catch (err) {
      throw tokenError(err, 'bearer token');
    }
  }
}
