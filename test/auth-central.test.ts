/**
 * OIDC sign-in through a central sign-in host, end to end: a real provider
 * (`oidc-provider`), a real relay with the access gate, a connector, and the
 * header-echo app. Covers the handoff of the session to each app host, the
 * assertion checked against the relay's JWKS, bearer tokens, tampered and
 * foreign cookies, open-redirect attempts, replayed handoffs, and sign-out
 * closing streams (only the user's own: never a HEAD or another site's link).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { request } from 'undici';
import { SessionCodec } from '../packages/relay/src/auth/sessions.ts';
import { openStore, type AuditEvent } from '../packages/relay/src/store/index.ts';
import { type AuthStack, type Echo, startAuthStack } from './helpers/auth-stack.ts';
import { client } from './helpers/harness.ts';
import { startIdp, type TestIdp } from './helpers/idp.ts';
import { header, UserAgent } from './helpers/user-agent.ts';

const RULES = [
  { name: 'X-Remote-User', value: '{email}' },
  { name: 'X-Remote-Name', value: '{name}' },
  { name: 'X-Remote-Groups', value: '{groups}' },
  { name: 'X-Dept', value: '{claim:department}' },
];

describe('OIDC through a central sign-in host', () => {
  let idp: TestIdp;
  let s: AuthStack;

  before(async () => {
    idp = await startIdp();
    idp.users.set('ada', { email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', groups: ['staff', 'admins'], department: 'R&D' });
    idp.autoLogin = 'ada';
    s = await startAuthStack(
      [
        { name: 'hello', externalHost: 'hello.test', preauth: 'oidc', headers: RULES, assignments: [{ kind: 'group', id: 'staff' }, { kind: 'user', id: 'relay' }], bearerAudience: 'https://api.hello.test' },
        { name: 'board', externalHost: 'board.test', preauth: 'oidc', headers: RULES, assignments: [{ kind: 'user', id: 'ADA@example.com' }] },
        { name: 'secret', externalHost: 'secret.test', preauth: 'oidc', assignments: [{ kind: 'user', id: 'someone-else@example.com' }] },
        { name: 'open', externalHost: 'open.test', preauth: 'passthrough' },
      ],
      {
        signInHost: 'login.test',
        oidc: { issuer: idp.issuer, clientId: 'relay', clientSecret: 'relay-secret', scopes: ['openid', 'email', 'profile', 'groups'] },
        assertion: { issuer: 'https://login.test' },
      },
    );
    idp.configure({
      clients: [{ client_id: 'relay', client_secret: 'relay-secret', redirect_uris: [s.url('login.test', '/.well-known/drawbridge/callback')], grant_types: ['authorization_code', 'client_credentials'] }],
    });
  });
  after(async () => {
    await s.close();
    await idp.close();
  });

  const audit = (type: string, requestId?: string): Promise<AuditEvent[]> => s.store.listAudit({ type, ...(requestId ? { requestId } : {}) });

  async function signedIn(path = '/'): Promise<{ ua: UserAgent; echo: Echo; chain: string[] }> {
    const ua = new UserAgent();
    const page = await ua.navigate(s.url('hello.test', path));
    assert.equal(page.status, 200, `${page.chain.join('\n')}\n${page.body.slice(0, 300)}`);
    return { ua, echo: JSON.parse(page.body) as Echo, chain: page.chain };
  }

  it('runs the code flow end to end and lands on the app with its SSO headers and a verifiable assertion', async () => {
    const { ua, echo, chain } = await signedIn('/reports/q3?format=csv');
    const hosts = chain.map((u) => new URL(u).host);
    assert.equal(hosts[0], `hello.test:${s.port}`);
    assert.equal(hosts[1], `login.test:${s.port}`);
    assert.ok(hosts.includes(new URL(idp.issuer).host), 'went to the provider');
    assert.ok(chain.some((u) => u.includes('/.well-known/drawbridge/handoff?token=')));
    assert.equal(echo.url, '/reports/q3?format=csv');
    assert.equal(echo.headers['x-remote-user'], 'ada@example.com');
    assert.equal(echo.headers['x-remote-name'], 'Ada Lovelace');
    assert.equal(echo.headers['x-remote-groups'], 'staff,admins');
    assert.equal(echo.headers['x-dept'], 'R&D');
    assert.equal(echo.headers.cookie, undefined, 'no relay cookie reaches the app');

    const jwks = (await ua.fetch(s.url('hello.test', '/.well-known/drawbridge/jwks.json'))).body;
    const keys = JSON.parse(jwks) as JSONWebKeySet;
    assert.ok(keys.keys.length >= 2, 'current and next key are published');
    const { payload } = await jwtVerify(echo.headers['x-drawbridge-assertion'] as string, createLocalJWKSet(keys), { issuer: 'https://login.test', audience: 'hello.test' });
    assert.equal(payload.sub, 'ada');
    assert.equal(payload.email, 'ada@example.com');
    assert.deepEqual(payload.groups, ['staff', 'admins']);
    assert.equal(payload.app, s.apps.get('hello')!.id);
    assert.deepEqual(payload.amr, ['oidc']);
    assert.match(payload.jti!, /^[\w-]{16}$/);
    assert.ok(payload.exp! - payload.iat! <= 120);
    const again = JSON.parse((await ua.navigate(s.url('hello.test', '/'))).body) as Echo;
    assert.equal(again.headers['x-drawbridge-assertion'], echo.headers['x-drawbridge-assertion'], 'reused within auth.assertionReuse');
    assert.notEqual(again.headers['x-drawbridge-request-id'], echo.headers['x-drawbridge-request-id'], 'the request id stays per request');

    // Host-only cookies: the central host and the app host each have their own.
    assert.ok(ua.cookies('hello.test').some((c) => c.name === 'drawbridge_session'));
    assert.ok(ua.cookies('login.test').some((c) => c.name === 'drawbridge_session'));
    const [event] = (await audit('user.signin')).filter((e) => e.outcome === 'success');
    assert.equal(event?.actor, 'ada');
    assert.equal(event?.app, s.apps.get('hello')!.id);
    assert.equal(event?.details.method, 'oidc');
  });

  it('hands the central session to a second app without asking the provider again', async () => {
    const { ua } = await signedIn();
    idp.autoLogin = undefined; // the provider would now show its login page
    try {
      const page = await ua.navigate(s.url('board.test', '/'));
      assert.equal(page.status, 200, page.body.slice(0, 200));
      assert.ok(!page.chain.some((u) => u.startsWith(idp.issuer)));
      assert.equal((JSON.parse(page.body) as Echo).headers['x-remote-user'], 'ada@example.com');
    } finally {
      idp.autoLogin = 'ada';
    }
  });

  it('shows a 403 naming the app and the account to a signed-in user who is not assigned', async () => {
    const { ua } = await signedIn();
    const page = await ua.navigate(s.url('secret.test', '/'));
    assert.equal(page.status, 403);
    assert.equal(header(page, 'x-drawbridge-error'), 'ERR_ACCESS_DENIED');
    assert.match(page.body, /You do not have access to secret/);
    assert.match(page.body, /ada@example\.com/);
    assert.equal((await audit('access.denied', header(page, 'x-drawbridge-request-id'))).length, 1);
  });

  it('treats a tampered, foreign-key or other-host cookie as "sign in again", never an error', async () => {
    const { ua } = await signedIn();
    const good = ua.cookies('hello.test').find((c) => c.name === 'drawbridge_session')!.value;
    const [h, k, iv, ct, tag] = good.split('.') as [string, string, string, string, string];
    const i = Math.floor(ct.length / 2);
    const tampered = `${h}.${k}.${iv}.${ct.slice(0, i)}${ct[i] === 'A' ? 'B' : 'A'}${ct.slice(i + 1)}.${tag}`;
    const otherStore = await openStore(mkdtempSync(join(tmpdir(), 'drawbridge-foreign-')));
    const foreign = await new SessionCodec({ store: otherStore, clock: Date.now, keyPeriodMs: 7 * 86_400_000 }).sealSession({ sid: 'x', kind: 'oidc', sub: 'ada', expiresAt: Date.now() + 60_000 }, 'hello.test');
    await otherStore.close();
    const boardCookie = (await (async () => {
      await ua.navigate(s.url('board.test', '/'));
      return ua.cookies('board.test').find((c) => c.name === 'drawbridge_session')!.value;
    })());
    for (const [label, value] of [['tampered', tampered], ['foreign key', foreign], ['other host', boardCookie], ['garbage', 'not-a-jwe']] as const) {
      const res = await request(`http://127.0.0.1:${s.port}/`, { headers: { host: `hello.test:${s.port}`, cookie: `drawbridge_session=${value}` }, dispatcher: client });
      await res.body.dump();
      assert.equal(res.statusCode, 302, label);
      assert.match(String(res.headers.location), /^http:\/\/login\.test:\d+\/\.well-known\/drawbridge\/signin\?rd=/, label);
      assert.match(String(res.headers['set-cookie']), /drawbridge_session=; .*Max-Age=0/, `${label}: the stale cookie is cleared`);
    }
    const rejected = await audit('session.rejected');
    assert.ok(rejected.some((e) => e.details.reason === 'ERR_SESSION_INVALID'));
    assert.ok(rejected.some((e) => e.details.reason === 'ERR_SESSION_WRONG_HOST'));
  });

  it('refuses return-to URLs that are not a pre-authenticated app on this listener (no open redirect)', async () => {
    const st = 'A'.repeat(24);
    const attempts = [
      'http://evil.test/',
      `http://evil.test:${s.port}/`,
      `http://open.test:${s.port}/`,
      `http://user:pw@hello.test:${s.port}/`,
      `https://hello.test:${s.port}/`,
      `http://hello.test:1/`,
      `//hello.test:${s.port}/`,
      `javascript:alert(1)//hello.test:${s.port}/`,
      `http://hello.test:${s.port}\\@evil.test/`,
    ];
    for (const rd of attempts) {
      const res = await new UserAgent().fetch(s.url('login.test', `/.well-known/drawbridge/signin?rd=${encodeURIComponent(rd)}&st=${st}`));
      assert.equal(res.status, 400, rd);
      assert.equal(header(res, 'x-drawbridge-error'), 'ERR_REDIRECT_NOT_ALLOWED', rd);
      assert.equal(header(res, 'location'), undefined);
    }
    const fine = await new UserAgent().fetch(s.url('login.test', `/.well-known/drawbridge/signin?rd=${encodeURIComponent(s.url('hello.test', '/x'))}&st=${st}`));
    assert.equal(fine.status, 302);
    assert.ok(header(fine, 'location')!.startsWith(`${idp.issuer}/auth?`));
  });

  it('accepts a handoff once, only on its own host and only in the browser that started the sign-in', async () => {
    const ua = new UserAgent();
    const stop = await ua.navigate(s.url('hello.test', '/'), {}, (l) => l.includes('/handoff?token='));
    const handoff = stop.chain[stop.chain.length - 1]!;
    const token = new URL(handoff).searchParams.get('token')!;

    const elsewhere = await new UserAgent().fetch(handoff);
    assert.equal(header(elsewhere, 'x-drawbridge-error'), 'ERR_SIGNIN_STATE', 'another browser lacks the state cookie');
    const otherHost = await ua.fetch(s.url('board.test', `/.well-known/drawbridge/handoff?token=${token}`));
    assert.equal(header(otherHost, 'x-drawbridge-error'), 'ERR_HANDOFF_INVALID');

    // A HEAD (a link scanner, a preview) spends neither the token nor the state cookie.
    const head = await ua.fetch(handoff, { method: 'HEAD' });
    assert.equal(head.status, 405);
    assert.equal(header(head, 'allow'), 'GET');
    assert.equal(header(head, 'x-drawbridge-error'), 'ERR_METHOD_NOT_ALLOWED');
    // Where a GET would find no such step, neither does a HEAD: the central host takes no handoff, an app host no callback.
    assert.equal((await ua.fetch(s.url('login.test', `/.well-known/drawbridge/handoff?token=${token}`), { method: 'HEAD' })).status, 404);
    assert.equal((await ua.fetch(s.url('hello.test', '/.well-known/drawbridge/callback?code=x&state=y'), { method: 'HEAD' })).status, 404);

    const stateCookie = ua.cookies('hello.test').find((c) => c.name.startsWith('drawbridge_hs_'))!;
    const first = await ua.fetch(handoff);
    assert.equal(first.status, 302);
    assert.equal(header(first, 'location'), '/');
    assert.equal(ua.cookies('hello.test').some((c) => c.name === stateCookie.name), false, 'the state cookie is spent');
    assert.equal(header(await ua.fetch(handoff), 'x-drawbridge-error'), 'ERR_SIGNIN_STATE');
    // Even with the state cookie put back, the token itself works only once.
    ua.setCookie('hello.test', stateCookie.name, stateCookie.value, stateCookie.path);
    assert.equal(header(await ua.fetch(handoff), 'x-drawbridge-error'), 'ERR_HANDOFF_INVALID');
  });

  it('refuses a callback whose state was never issued, and records a provider error', async () => {
    const ua = new UserAgent();
    const forged = await ua.fetch(s.url('login.test', '/.well-known/drawbridge/callback?code=abc&state=ZZZZZZZZZZZZZZZZZZZZZZZZ'));
    assert.equal(forged.status, 400);
    assert.equal(header(forged, 'x-drawbridge-error'), 'ERR_SIGNIN_STATE');

    const stop = await ua.navigate(s.url('hello.test', '/'), {}, (l) => l.startsWith(idp.issuer));
    const auth = new URL(stop.chain[stop.chain.length - 1]!);
    const state = auth.searchParams.get('state')!;
    const refused = await ua.fetch(s.url('login.test', `/.well-known/drawbridge/callback?error=access_denied&state=${state}`));
    assert.equal(refused.status, 401);
    assert.equal(header(refused, 'x-drawbridge-error'), 'ERR_OIDC_PROVIDER_ERROR');
    const failures = (await audit('user.signin', header(refused, 'x-drawbridge-request-id'))).filter((e) => e.outcome === 'failure');
    assert.equal(failures[0]?.details.reason, 'ERR_OIDC_PROVIDER_ERROR');
  });

  it('accepts a bearer JWT from the provider for the app’s audience without a cookie, and refuses others', async () => {
    const token = await idp.clientToken('relay', 'relay-secret', 'https://api.hello.test');
    const call = async (auth: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> => {
      const res = await request(`http://127.0.0.1:${s.port}/api/items`, { headers: { host: `hello.test:${s.port}`, authorization: auth }, dispatcher: client });
      return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
    };
    const ok = await call(`Bearer ${token}`);
    assert.equal(ok.status, 200, ok.body.slice(0, 200));
    const echo = JSON.parse(ok.body) as Echo;
    assert.equal(echo.headers.authorization, `Bearer ${token}`, 'the API still gets its token');
    assert.ok(echo.headers['x-drawbridge-assertion']);
    await call(`Bearer ${token}`);
    const accepted = (await audit('token.accepted')).filter((e) => e.actor === 'relay');
    assert.equal(accepted.length, 1, 'one audit event per token, not per call');

    const other = await idp.clientToken('relay', 'relay-secret', 'https://api.other.test');
    const wrong = await call(`Bearer ${other}`);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['x-drawbridge-error'], 'ERR_OIDC_BAD_AUDIENCE');
    assert.equal(wrong.headers['www-authenticate'], 'Bearer error="invalid_token"');
    assert.ok((await audit('token.rejected')).some((e) => e.details.reason === 'ERR_OIDC_BAD_AUDIENCE'));
  });

  it('signs out everywhere: closes the user’s open streams, ends the central session, and old cookies stop working', async () => {
    const { ua } = await signedIn();
    await ua.navigate(s.url('board.test', '/'));
    const cookieFor = (host: string): string => ua.cookies(host).map((c) => `${c.name}=${c.value}`).join('; ');
    const helloCookie = cookieFor('hello.test');
    const boardCookie = cookieFor('board.test');
    const opened = once(s.events, 'sse-open');
    const sse = await request(`http://127.0.0.1:${s.port}/sse`, { headers: { host: `board.test:${s.port}`, cookie: boardCookie }, dispatcher: client });
    sse.body.on('error', () => undefined);
    sse.body.resume();
    await opened;
    const closed = once(s.events, 'sse-close');

    // A link scanner's HEAD and a link on another site, to either host, end nothing: they ask.
    const rd = encodeURIComponent(s.url('hello.test', '/'));
    for (const url of [s.url('hello.test', '/.well-known/drawbridge/signout'), s.url('login.test', `/.well-known/drawbridge/signout?rd=${rd}`)]) {
      for (const init of [{ method: 'HEAD' }, { headers: { 'sec-fetch-site': 'cross-site' } }]) {
        const asked = await ua.fetch(url, init);
        assert.equal(asked.status, 200, url);
        assert.equal(header(asked, 'set-cookie'), undefined, url);
        if (init.method !== 'HEAD') assert.match(asked.body, /<h1>Sign out of hello\?<\/h1>[^]*signed in as <strong>ada@example\.com<\/strong>/);
      }
    }
    assert.deepEqual(await audit('user.signout'), []);
    const still = await request(`http://127.0.0.1:${s.port}/`, { headers: { host: `hello.test:${s.port}`, cookie: helloCookie }, dispatcher: client });
    await still.body.dump();
    assert.equal(still.statusCode, 200, 'still signed in');

    // The provider's own sign-out is test/auth-provider-logout.test.ts's: stop at its door.
    const out = await ua.navigate(s.url('hello.test', '/.well-known/drawbridge/signout'), {}, (location) => location.startsWith(`${idp.issuer}/session/end`));
    assert.equal(out.status, 302);
    assert.ok(out.chain[1]!.startsWith(s.url('login.test', '/.well-known/drawbridge/signout')));
    assert.ok(out.chain[2]!.startsWith(`${idp.issuer}/session/end?`), out.chain.join('\n'));
    await closed;
    for (const [host, cookie] of [['hello.test', helloCookie], ['board.test', boardCookie]] as const) {
      const res = await request(`http://127.0.0.1:${s.port}/`, { headers: { host: `${host}:${s.port}`, cookie }, dispatcher: client });
      await res.body.dump();
      assert.equal(res.statusCode, 302, `${host}: the session was ended, not just its cookie`);
    }
    // The central session is gone too: opening an app asks the provider again.
    const again = await ua.navigate(s.url('hello.test', '/'));
    assert.ok(again.chain.some((u) => u.startsWith(idp.issuer)));
    const [event, ...more] = await audit('user.signout');
    assert.deepEqual(more, []);
    assert.equal(event?.actor, 'ada');
    assert.equal(event?.details.provider, 'central');
    assert.equal(event?.details.closedStreams, 1);
  });
});
