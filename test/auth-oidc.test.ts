/**
 * The relay's OpenID Connect client against a real provider (`oidc-provider`
 * from npm, started here): discovery, the authorization code flow with PKCE,
 * and every way an ID token or a bearer token must be refused — wrong
 * audience, expired, wrong nonce, tampered signature, another issuer.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { AuthError } from '../packages/relay/src/auth/errors.ts';
import { identityFromClaims, OidcClient } from '../packages/relay/src/auth/oidc.ts';
import { startIdp, type TestIdp } from './helpers/idp.ts';
import { UserAgent } from './helpers/user-agent.ts';

const REDIRECT = 'http://rp.test:1/.well-known/drawbridge/callback';
const clientA = { client_id: 'relay-a', client_secret: 'secret-a', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'client_credentials'] };
const clientB = { client_id: 'relay-b', client_secret: 'secret-b', redirect_uris: [REDIRECT], grant_types: ['authorization_code'] };

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Runs the browser part of the code flow; returns the code the provider sent back. */
async function authorize(url: string): Promise<string> {
  const ua = new UserAgent();
  const page = await ua.navigate(url, {}, (location) => location.startsWith(REDIRECT));
  const back = new URL(page.chain[page.chain.length - 1]!);
  assert.ok(back.href.startsWith(REDIRECT), `flow ended at ${back.href} (${page.status}): ${page.body.slice(0, 200)}`);
  const code = back.searchParams.get('code');
  assert.ok(code, `no code: ${back.search}`);
  return code;
}

/** A raw ID token for `client` with `nonce`, exchanged by hand (what another RP would hold). */
async function rawIdToken(idp: TestIdp, client: typeof clientA, nonce: string): Promise<string> {
  const verifier = randomBytes(32).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    scope: 'openid email profile',
    state: 'state-1234567890abcdefghij',
    nonce,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const code = await authorize(`${idp.issuer}/auth?${q.toString()}`);
  const res = await request(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }).toString(),
  });
  const body = (await res.body.json()) as { id_token: string };
  return body.id_token;
}

describe('OIDC client against a real provider', () => {
  let idp: TestIdp;
  const rp = (clock: () => number = Date.now): OidcClient => new OidcClient({ issuer: idp.issuer, clientId: clientA.client_id, clientSecret: clientA.client_secret, scopes: ['openid', 'email', 'profile', 'groups'] }, clock);

  before(async () => {
    idp = await startIdp({ clients: [clientA, clientB] });
    idp.users.set('ada', { email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', groups: ['staff', 'admins'], department: 'R&D' });
    idp.users.set('eve', { email: 'boss@example.com', email_verified: false, name: 'Eve' });
    idp.autoLogin = 'ada';
  });
  after(() => idp.close());

  it('runs the code flow with PKCE, state and nonce, and reads the identity from the ID token', async () => {
    const client = rp();
    const start = await client.authorizationStart(REDIRECT);
    const url = new URL(start.url);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('state'), start.state);
    assert.equal(url.searchParams.get('nonce'), start.nonce);
    const { claims } = await client.completeSignIn(await authorize(start.url), REDIRECT, start);
    const id = identityFromClaims(claims);
    assert.equal(id.sub, 'ada');
    assert.equal(id.email, 'ada@example.com');
    assert.equal(id.name, 'Ada Lovelace');
    assert.deepEqual(id.groups, ['staff', 'admins']);
    assert.equal(id.claims?.department, 'R&D');
    assert.equal(id.claims?.nonce, undefined, 'protocol claims are not user claims');
  });

  it('refuses the code with another PKCE verifier', async () => {
    const client = rp();
    const start = await client.authorizationStart(REDIRECT);
    const code = await authorize(start.url);
    await rejects(client.completeSignIn(code, REDIRECT, { nonce: start.nonce, verifier: randomBytes(32).toString('base64url') }), 'ERR_OIDC_TOKEN_EXCHANGE');
  });

  it('refuses an ID token with the wrong nonce', async () => {
    const client = rp();
    const start = await client.authorizationStart(REDIRECT);
    const code = await authorize(start.url);
    await rejects(client.completeSignIn(code, REDIRECT, { nonce: 'another-nonce', verifier: start.verifier }), 'ERR_OIDC_BAD_NONCE');
  });

  it('refuses an ID token issued to another client (wrong audience)', async () => {
    const token = await rawIdToken(idp, clientB, 'n-1');
    await rp().verifyIdToken(token, 'n-1').then(
      () => assert.fail('accepted a token for relay-b'),
      (err: AuthError) => assert.equal(err.code, 'ERR_OIDC_BAD_AUDIENCE'),
    );
  });

  it('refuses an expired ID token', async () => {
    const token = await rawIdToken(idp, clientA, 'n-2');
    const client = rp(() => Date.now() + 2 * 3_600_000);
    await rejects(client.verifyIdToken(token, 'n-2'), 'ERR_OIDC_TOKEN_EXPIRED');
    // The same token is fine at the right time: only the clock differs.
    assert.equal((await rp().verifyIdToken(token, 'n-2')).sub, 'ada');
  });

  it('refuses an ID token whose signature was tampered with, or whose payload was', async () => {
    const token = await rawIdToken(idp, clientA, 'n-3');
    const [h, p, s] = token.split('.') as [string, string, string];
    const i = Math.floor(s.length / 2);
    const badSig = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    await rejects(rp().verifyIdToken(badSig, 'n-3'), 'ERR_OIDC_BAD_SIGNATURE');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...payload, sub: 'admin' })).toString('base64url');
    await rejects(rp().verifyIdToken(`${h}.${forged}.${s}`, 'n-3'), 'ERR_OIDC_BAD_SIGNATURE');
  });

  it('refuses a provider whose discovery names another issuer', async () => {
    const client = new OidcClient({ issuer: `${idp.issuer}/`, clientId: 'relay-a' }, Date.now);
    await rejects(client.authorizationStart(REDIRECT), 'ERR_OIDC_BAD_ISSUER');
  });

  it('refuses a discovery document whose endpoints are not absolute http(s) URLs', async () => {
    // A broken provider: its discovery document only.
    let doc: Record<string, unknown> = {};
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const good = { issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` };
      for (const broken of [{ jwks_uri: '/jwks' }, { authorization_endpoint: 'not a url' }, { token_endpoint: 'ftp://127.0.0.1/token' }]) {
        doc = { ...good, ...broken };
        await rejects(new OidcClient({ issuer, clientId: 'x' }, Date.now).authorizationStart(REDIRECT), 'ERR_OIDC_UNAVAILABLE');
      }
      doc = good;
      assert.match((await new OidcClient({ issuer, clientId: 'x' }, Date.now).authorizationStart(REDIRECT)).url, /^http:\/\/127\.0\.0\.1:\d+\/auth\?/);
    } finally {
      server.close();
    }
  });

  it('reports an unreachable provider as ERR_OIDC_UNAVAILABLE', async () => {
    const client = new OidcClient({ issuer: 'http://127.0.0.1:9', clientId: 'x', requestTimeoutMs: 2_000 }, Date.now);
    await rejects(client.authorizationStart(REDIRECT), 'ERR_OIDC_UNAVAILABLE');
  });

  it('drops an email the provider says is unverified', async () => {
    assert.equal(identityFromClaims({ sub: 'eve', email: 'boss@example.com', email_verified: false, name: 'Eve' }).email, undefined);
    assert.deepEqual(identityFromClaims({ sub: 'k', realm_access: { roles: ['r1'] } }, 'realm_access.roles').groups, ['r1']);
  });

  it('accepts a bearer access token for the configured audience only', async () => {
    const token = await idp.clientToken('relay-a', 'secret-a', 'https://api.hello.test');
    const claims = await rp().verifyAccessToken(token, 'https://api.hello.test');
    assert.equal(claims.sub, 'relay-a');
    await rejects(rp().verifyAccessToken(token, 'https://api.other.test'), 'ERR_OIDC_BAD_AUDIENCE');
    await rejects(rp(() => Date.now() + 2 * 3_600_000).verifyAccessToken(token, 'https://api.hello.test'), 'ERR_OIDC_TOKEN_EXPIRED');
    await rejects(rp().verifyAccessToken(`${token}x`, 'https://api.hello.test'), 'ERR_OIDC_BAD_SIGNATURE');
  });
});
