/**
 * Sign-out at the OpenID provider (RP-initiated logout), end to end against a
 * real provider (`oidc-provider`, started here) and real relays: after the
 * relay ends its own session it sends the browser to the provider's
 * `end_session_endpoint`, the provider asks the user, ends its session and
 * sends the browser back to the relay's signed-out page; the next sign-in
 * asks for credentials again. The ID token travels as `id_token_hint` when
 * it fits in its cookie. Also: sign-outs that are not the user's own click
 * (another site's or a sibling app's link or form, an image in a page) and
 * HEAD requests (they end nothing and ask; the answer's own post signs out),
 * a provider step that fails after the session ended, the off switch, a
 * provider without the endpoint, an unreachable provider, local sessions,
 * what `user.signout` records of the provider step, and that
 * neither `rd` nor the post-logout page can be used as an open redirect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { decodeJwt } from 'jose';
import type { ClientMetadata } from 'oidc-provider';
import { request } from 'undici';
import { hashPassword } from '../packages/relay/src/auth/index.ts';
import { OidcClient } from '../packages/relay/src/auth/oidc.ts';
import { SessionCodec } from '../packages/relay/src/auth/sessions.ts';
import type { Store } from '../packages/relay/src/store/index.ts';
import { type AuthStack, startAuthStack } from './helpers/auth-stack.ts';
import { client } from './helpers/harness.ts';
import { startIdp, type TestIdp } from './helpers/idp.ts';
import { formFields, header, type Page, unescapeHtml, UserAgent } from './helpers/user-agent.ts';

const RELAY = '/.well-known/drawbridge/';
const SECRET = 'relay-secret';
const SCOPES = ['openid', 'email', 'profile', 'groups'];

function asksForLogin(idp: TestIdp, page: Page): boolean {
  return page.url.startsWith(`${idp.issuer}/interaction/`) && page.body.includes('id="idp-login"');
}

/** Opens `url`; when the provider shows its login form, signs in there as `login`. Returns where the browser ends. */
async function signIn(ua: UserAgent, idp: TestIdp, url: string, login: string): Promise<Page> {
  const page = await ua.navigate(url);
  if (!asksForLogin(idp, page)) return page;
  const action = /<form method="post" action="([^"]+)"/.exec(page.body)![1]!;
  return ua.navigate(new URL(action, page.url).href, { form: { login } });
}

/** Answers the provider's "Do you want to sign out?" with yes, as the user's click would post it. */
async function confirmAtProvider(ua: UserAgent, page: Page): Promise<Page> {
  assert.equal(page.status, 200, page.body.slice(0, 300));
  assert.match(page.body, /Sign out of the test IdP\?/);
  const action = /<form id="op\.logoutForm" method="post" action="([^"]+)"/.exec(page.body)![1]!;
  return ua.navigate(new URL(action, page.url).href, { form: { xsrf: formFields(page.body).xsrf!, logout: 'yes' } });
}

const sessionCookie = (ua: UserAgent, host: string): string | undefined => ua.cookies(host).find((c) => c.name === 'drawbridge_session')?.value;
const hintCookie = (ua: UserAgent, host: string): { value: string; path: string } | undefined => ua.cookies(host).find((c) => c.name === 'drawbridge_id_hint');
const CROSS_SITE = { 'sec-fetch-site': 'cross-site' };
const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' };
/** The app's own "Sign out" link, as a browser with Fetch Metadata follows it. */
const NAVIGATE = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
/** A link on another app of the same domain (a sibling host: another site's origin, the same site). */
const SAME_SITE = { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
/** `<img src="/.well-known/drawbridge/signout">` in user content, on a page of the app itself or (`same-site`) of a sibling app. */
const IMAGE = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' };
const SIBLING_IMAGE = { ...IMAGE, 'sec-fetch-site': 'same-site' };
const HOUR = 3_600_000;

/** The confirmation a sign-out not started by the user gets: a page, and nothing changed. */
function assertAsks(page: Page, title: string, label = ''): void {
  assert.equal(page.status, 200, `${label} ${page.body.slice(0, 300)}`);
  assert.equal(header(page, 'location'), undefined, label);
  assert.equal(header(page, 'set-cookie'), undefined, `${label}: no cookie changes, not even a deletion`);
  assert.equal(header(page, 'x-drawbridge-error'), undefined, label);
  if (page.body !== '') assert.ok(page.body.includes(`<h1>${title}</h1>`), `${label} ${page.body}`);
}

/** The confirmation's button, as the browser posts it: from the relay's own page, so same-origin. */
function confirmUrl(page: Page): string {
  return new URL(unescapeHtml(/<form method="post" action="([^"]+)">/.exec(page.body)![1]!), page.url).href;
}
const codecOf = (s: AuthStack): SessionCodec => new SessionCodec({ store: s.store, clock: Date.now, keyPeriodMs: 7 * 86_400_000 });

/**
 * The store as a relay sees it when its database fails under it: the real
 * one, except that reading the session keys fails while `broken.now` is set.
 * The relay's key ring reads them once per key period, so the failure shows
 * at the first sealing or opening after the period turns.
 */
function sessionKeysFail(broken: { now: boolean }): (store: Store) => Store {
  return (store) =>
    new Proxy(store, {
      get(target, prop) {
        if (prop === 'getSetting') {
          return (key: string) => (broken.now && key.startsWith('auth.session-key.') ? Promise.reject(new Error('SQLITE_IOERR: disk I/O error')) : target.getSetting(key));
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
}

/** Sets the stack's clock `ms` before the end of the current key period (`HOUR`): the relay's keys stay loaded until it turns. */
function nearPeriodEnd(s: AuthStack, ms: number): void {
  const now = Date.now();
  s.skew.ms = (Math.floor(now / HOUR) + 1) * HOUR - ms - now;
}

/**
 * A stack for app `<name>.test` whose gate's store fails to read session keys
 * once `broken.now` is set, and a browser signed in there with OIDC (and on
 * `signInHost`, and with a kept ID token, when asked). The relay opens the
 * session while its keys are loaded; then the key period turns and the store
 * fails, so the next sealing or opening after the session ends fails.
 */
async function keysFailAfterSignIn(
  t: TestContext,
  idp: TestIdp,
  name: string,
  opts: { signInHost?: string; hint?: boolean },
): Promise<{ s: AuthStack; ua: UserAgent; broken: { now: boolean } }> {
  const broken = { now: false };
  const host = `${name}.test`;
  const s = await startAuthStack(
    [{ name, externalHost: host, preauth: 'oidc', assignments: [{ kind: 'group', id: 'staff' }] }],
    { ...(opts.signInHost ? { signInHost: opts.signInHost } : {}), oidc: { issuer: idp.issuer, clientId: name, clientSecret: SECRET, scopes: SCOPES }, session: { maxAgeMs: HOUR, keyPeriodMs: HOUR } },
    { gateStore: sessionKeysFail(broken) },
  );
  t.after(() => s.close());
  nearPeriodEnd(s, 5_000);
  const codec = new SessionCodec({ store: s.store, clock: () => Date.now() + s.skew.ms, keyPeriodMs: HOUR });
  const session = { sid: `sid-${name}`, kind: 'oidc' as const, sub: 'ada', email: 'ada@example.com', groups: ['staff'], expiresAt: Date.now() + s.skew.ms + 600_000 };
  const ua = new UserAgent();
  for (const h of [host, ...(opts.signInHost ? [opts.signInHost] : [])]) ua.setCookie(h, 'drawbridge_session', await codec.sealSession(session, h));
  if (opts.hint) ua.setCookie(host, 'drawbridge_id_hint', await codec.sealIdTokenHint({ sid: session.sid, idToken: 'the.id.token' }, host, session.expiresAt), RELAY);
  assert.equal((await ua.fetch(s.url(host, '/'))).status, 200);
  s.skew.ms += 10_000;
  broken.now = true;
  return { s, ua, broken };
}

describe('sign-out at the identity provider', () => {
  let idp: TestIdp;
  /** A provider whose discovery names no end_session_endpoint. */
  let bareIdp: TestIdp;
  /** Central sign-in host login.test; hello.test (oidc), wiki.test (local). */
  let central: AuthStack;
  /** Per-app sign-in on solo.test. */
  let solo: AuthStack;

  /** ada signed in at solo.test: her session cookie and kept ID token, the sign-out URL, and how many sign-outs the audit has so far. */
  async function signedInAtSolo(): Promise<{ ua: UserAgent; cookie: string | undefined; hint: string | undefined; signout: string; events: number }> {
    const ua = new UserAgent();
    assert.equal((await signIn(ua, idp, solo.url('solo.test', '/'), 'ada')).status, 200);
    return {
      ua,
      cookie: sessionCookie(ua, 'solo.test'),
      hint: hintCookie(ua, 'solo.test')?.value,
      signout: solo.url('solo.test', `${RELAY}signout`),
      events: (await solo.store.listAudit({ type: 'user.signout' })).length,
    };
  }
  /** `providerLogout: false`. */
  let off: AuthStack;
  let bare: AuthStack;
  /** Its provider does not answer. */
  let dead: AuthStack;

  before(async () => {
    idp = await startIdp();
    bareIdp = await startIdp();
    for (const p of [idp, bareIdp]) p.users.set('ada', { email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', groups: ['staff'] });
    // An ID token of some 12 KB: too large to keep for the hint (the session itself keeps only the assigned group).
    idp.users.set('bulky', { email: 'bulky@example.com', email_verified: true, groups: ['staff', ...Array.from({ length: 400 }, (_, i) => `a-rather-long-group-name-${i}`)] });
    const assigned = [{ kind: 'group' as const, id: 'staff' }];
    const oidc = (issuer: string, clientId: string): { issuer: string; clientId: string; clientSecret: string; scopes: string[] } => ({ issuer, clientId, clientSecret: SECRET, scopes: SCOPES });
    central = await startAuthStack(
      [
        { name: 'hello', externalHost: 'hello.test', preauth: 'oidc', assignments: assigned },
        { name: 'wiki', externalHost: 'wiki.test', preauth: 'local', assignments: assigned },
      ],
      { signInHost: 'login.test', oidc: oidc(idp.issuer, 'central') },
    );
    solo = await startAuthStack([{ name: 'solo', externalHost: 'solo.test', preauth: 'oidc', assignments: assigned }], { oidc: oidc(idp.issuer, 'solo') });
    off = await startAuthStack([{ name: 'quiet', externalHost: 'quiet.test', preauth: 'oidc', assignments: assigned }], { oidc: { ...oidc(idp.issuer, 'quiet'), providerLogout: false } });
    bare = await startAuthStack([{ name: 'bare', externalHost: 'bare.test', preauth: 'oidc', assignments: assigned }], { oidc: oidc(bareIdp.issuer, 'bare') });
    dead = await startAuthStack([{ name: 'dead', externalHost: 'dead.test', preauth: 'oidc', assignments: assigned }], { oidc: oidc('http://127.0.0.1:1', 'dead') });
    const registered = (clientId: string, s: AuthStack, host: string, logout = true): ClientMetadata => ({
      client_id: clientId,
      client_secret: SECRET,
      redirect_uris: [s.url(host, `${RELAY}callback`)],
      ...(logout ? { post_logout_redirect_uris: [s.url(host, `${RELAY}signedout`)] } : {}),
    });
    idp.configure({ clients: [registered('central', central, 'login.test'), registered('solo', solo, 'solo.test'), registered('quiet', off, 'quiet.test', false)] });
    bareIdp.configure({ clients: [registered('bare', bare, 'bare.test', false)], rpInitiatedLogout: false });
    await central.store.createUser({ name: 'grace', passwordHash: await hashPassword('pa55 word', { logN: 10 }), groups: ['staff'] });
  });
  after(async () => {
    for (const s of [central, solo, off, bare, dead]) await s?.close();
    await idp?.close();
    await bareIdp?.close();
  });

  it('asks the provider with client_id, post_logout_redirect_uri, state and the hint when there is one; not at all without an endpoint', async () => {
    const rp = new OidcClient({ issuer: idp.issuer, clientId: 'central' }, Date.now);
    const url = new URL((await rp.endSessionUrl('http://login.test:1/.well-known/drawbridge/signedout', 'st-1'))!);
    assert.equal(`${url.origin}${url.pathname}`, `${idp.issuer}/session/end`);
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'post_logout_redirect_uri', 'state']);
    assert.equal(url.searchParams.get('client_id'), 'central');
    assert.equal(url.searchParams.get('post_logout_redirect_uri'), 'http://login.test:1/.well-known/drawbridge/signedout');
    assert.equal(url.searchParams.get('state'), 'st-1');
    const hinted = new URL((await rp.endSessionUrl('http://login.test:1/x', 'st-2', 'the.id.token'))!);
    assert.equal(hinted.searchParams.get('id_token_hint'), 'the.id.token');
    assert.equal(await rp.offersLogout(), true);
    assert.equal(await new OidcClient({ issuer: idp.issuer, clientId: 'central', providerLogout: false }, Date.now).offersLogout(), false);
    const bareRp = new OidcClient({ issuer: bareIdp.issuer, clientId: 'bare' }, Date.now);
    assert.equal(await bareRp.endSessionUrl('http://bare.test:1/x', 'st'), undefined);
    assert.equal(await bareRp.offersLogout(), false);
  });

  it('central sign-in: ends the relay session, then the provider’s, lands on the signed-out page, and the next sign-in asks for credentials', async () => {
    const ua = new UserAgent();
    const app = await signIn(ua, idp, central.url('hello.test', '/start'), 'ada');
    assert.equal(app.status, 200, app.chain.join('\n'));
    const helloCookie = sessionCookie(ua, 'hello.test')!;
    // The ID token is kept on the sign-in host only, under the relay's own path, never in the session cookie.
    assert.equal(hintCookie(ua, 'login.test')?.path, '/.well-known/drawbridge/');
    assert.equal(hintCookie(ua, 'hello.test'), undefined);

    const out = await ua.navigate(central.url('hello.test', `${RELAY}signout`), {}, (location) => location.startsWith(idp.issuer));
    const [, hop, provider] = out.chain;
    const hopUrl = new URL(hop!);
    assert.equal(`${hopUrl.origin}${hopUrl.pathname}`, central.url('login.test', `${RELAY}signout`));
    assert.equal(hopUrl.searchParams.get('rd'), central.url('hello.test', '/'));
    assert.ok(hopUrl.searchParams.get('hop'), 'the app host vouches for the sign-out');
    const end = new URL(provider!);
    assert.equal(`${end.origin}${end.pathname}`, `${idp.issuer}/session/end`);
    assert.equal(end.searchParams.get('client_id'), 'central');
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), central.url('login.test', `${RELAY}signedout`));
    assert.ok(end.searchParams.get('state'));
    const hint = decodeJwt(end.searchParams.get('id_token_hint')!);
    assert.deepEqual([hint.iss, hint.aud, hint.sub], [idp.issuer, 'central', 'ada'], 'the hint is the ID token of this sign-in');
    // The relay's part is done before the browser leaves: cookies cleared on both hosts, session ended, audited.
    assert.equal(sessionCookie(ua, 'hello.test'), undefined);
    assert.equal(sessionCookie(ua, 'login.test'), undefined);
    assert.equal(hintCookie(ua, 'login.test'), undefined);
    const stale = await request(`http://127.0.0.1:${central.port}/`, { headers: { host: `hello.test:${central.port}`, cookie: `drawbridge_session=${helloCookie}` }, dispatcher: client });
    await stale.body.dump();
    assert.equal(stale.statusCode, 302, 'the copied cookie of the ended session is refused');
    const signouts = (await central.store.listAudit({ type: 'user.signout' })).filter((e) => e.actor === 'ada');
    assert.equal(signouts.length, 1, 'one sign-out event, from the app host');
    assert.equal(signouts[0]!.details.provider, 'central', 'the app host hands the provider step to the central host');

    const back = await confirmAtProvider(ua, await ua.navigate(provider!));
    assert.equal(back.status, 200);
    assert.ok(back.url.startsWith(central.url('login.test', `${RELAY}signedout?state=`)), back.url);
    assert.match(back.body, /<h1>You have signed out of hello<\/h1>/);
    assert.ok(back.body.includes(`href="${central.url('hello.test', '/')}">Sign in again`), back.body);

    const again = await ua.navigate(central.url('hello.test', '/'));
    assert.ok(asksForLogin(idp, again), `the provider's session is gone: ${again.chain.join('\n')}`);
    const resigned = await signIn(ua, idp, central.url('hello.test', '/'), 'ada');
    assert.equal(resigned.status, 200);
  });

  it('per-app sign-in: a POSTed sign-out comes back to the app host’s own signed-out page', async () => {
    const ua = new UserAgent();
    assert.equal((await signIn(ua, idp, solo.url('solo.test', '/'), 'ada')).status, 200);
    const out = await ua.navigate(solo.url('solo.test', `${RELAY}signout`), { method: 'POST' }, (location) => location.startsWith(idp.issuer));
    const end = new URL(out.chain[1]!);
    assert.equal(end.searchParams.get('client_id'), 'solo');
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), solo.url('solo.test', `${RELAY}signedout`));
    assert.equal(decodeJwt(end.searchParams.get('id_token_hint')!).aud, 'solo');
    assert.equal(sessionCookie(ua, 'solo.test'), undefined);
    const [event] = await solo.store.listAudit({ type: 'user.signout', requestId: header(out, 'x-drawbridge-request-id')! });
    assert.deepEqual(event?.details, { method: 'oidc', closedStreams: 0, provider: 'redirected' });

    const back = await confirmAtProvider(ua, await ua.navigate(out.chain[1]!));
    assert.ok(back.url.startsWith(solo.url('solo.test', `${RELAY}signedout?state=`)), back.url);
    assert.match(back.body, /<h1>You have signed out of solo<\/h1>/);
    assert.ok(back.body.includes('href="/">Sign in again'));
    assert.ok(asksForLogin(idp, await ua.navigate(solo.url('solo.test', '/'))));
  });

  it('an ID token too large to keep: sign-out goes to the provider without a hint', async () => {
    const ua = new UserAgent();
    assert.equal((await signIn(ua, idp, solo.url('solo.test', '/'), 'bulky')).status, 200);
    assert.ok(sessionCookie(ua, 'solo.test'));
    assert.equal(hintCookie(ua, 'solo.test'), undefined);
    const out = await ua.navigate(solo.url('solo.test', `${RELAY}signout`), {}, (location) => location.startsWith(idp.issuer));
    const end = new URL(out.chain[1]!);
    assert.equal(end.searchParams.has('id_token_hint'), false);
    assert.equal(end.searchParams.get('client_id'), 'solo');
    const back = await confirmAtProvider(ua, await ua.navigate(out.chain[1]!));
    assert.match(back.body, /You have signed out of solo/);
    assert.ok(asksForLogin(idp, await ua.navigate(solo.url('solo.test', '/'))));
  });

  it('a sign-out another site starts (GET or POST) or a HEAD ends nothing: it asks, and the answer’s own post signs out, at the provider too', async () => {
    const { ua, cookie, hint, signout, events } = await signedInAtSolo();
    for (const [label, init] of [
      ['GET', { headers: CROSS_SITE }],
      ['POST', { method: 'POST', headers: CROSS_SITE }],
      ['HEAD', { method: 'HEAD' }],
      ['HEAD, same-origin', { method: 'HEAD', headers: SAME_ORIGIN }],
    ] as const) {
      const page = await ua.fetch(signout, init);
      assertAsks(page, 'Sign out of solo?', label);
      if (label === 'GET') assert.match(page.body, /signed in as <strong>ada@example\.com<\/strong>/);
    }
    assert.equal(sessionCookie(ua, 'solo.test'), cookie);
    assert.equal(hintCookie(ua, 'solo.test')?.value, hint, 'the kept ID token stays too');
    assert.equal((await solo.store.listAudit({ type: 'user.signout' })).length, events, 'nothing ended, nothing audited');
    const still = await ua.navigate(solo.url('solo.test', '/'));
    assert.deepEqual(still.chain, [solo.url('solo.test', '/')], 'still signed in at the relay');

    const page = await ua.fetch(signout, { headers: CROSS_SITE });
    const out = await ua.navigate(confirmUrl(page), { method: 'POST', headers: SAME_ORIGIN }, (location) => location.startsWith(idp.issuer));
    assert.equal(out.status, 302);
    const end = new URL(out.chain[1]!);
    assert.equal(`${end.origin}${end.pathname}`, `${idp.issuer}/session/end`);
    assert.equal(decodeJwt(end.searchParams.get('id_token_hint')!).aud, 'solo');
    assert.equal(sessionCookie(ua, 'solo.test'), undefined);
    const back = await confirmAtProvider(ua, await ua.navigate(out.chain[1]!));
    assert.match(back.body, /You have signed out of solo/);
    assert.ok(asksForLogin(idp, await ua.navigate(solo.url('solo.test', '/'))), 'the provider’s session ended too');
  });

  it('central: a cross-site sign-out asks on the host it reached; the confirmation signs out everywhere, hop and all', async () => {
    // A link elsewhere to the app host: asked there.
    const ua = new UserAgent();
    assert.equal((await signIn(ua, idp, central.url('hello.test', '/'), 'ada')).status, 200);
    const appPage = await ua.fetch(central.url('hello.test', `${RELAY}signout`), { headers: CROSS_SITE });
    assertAsks(appPage, 'Sign out of hello?');
    assert.match(appPage.body, /signed in as <strong>ada@example\.com<\/strong>/);
    assert.ok(appPage.body.includes('href="/">Stay signed in'));
    assertAsks(await ua.fetch(central.url('hello.test', `${RELAY}signout`), { method: 'HEAD' }), 'Sign out of hello?', 'HEAD on the app host');
    assert.ok(sessionCookie(ua, 'hello.test'));
    assert.equal((await ua.navigate(central.url('hello.test', '/'))).status, 200, 'still signed in');

    // The button: same-origin on the app host, which vouches to the central host, where the redirect may arrive cross-site.
    const first = await ua.fetch(confirmUrl(appPage), { method: 'POST', headers: SAME_ORIGIN });
    const next = new URL(header(first, 'location')!);
    assert.equal(`${next.origin}${next.pathname}`, central.url('login.test', `${RELAY}signout`));
    assert.ok(next.searchParams.get('hop'));
    const out = await ua.fetch(next.href, { headers: CROSS_SITE });
    assert.equal(out.status, 302, out.body.slice(0, 300));
    assert.ok(header(out, 'location')!.startsWith(`${idp.issuer}/session/end?`));
    assert.equal(sessionCookie(ua, 'login.test'), undefined);
    await confirmAtProvider(ua, await ua.navigate(header(out, 'location')!));
    assert.ok(asksForLogin(idp, await ua.navigate(central.url('hello.test', '/'))));

    // A link elsewhere straight to the central host: asked there, naming the app of `rd`; the post keeps `rd` and drops the hop.
    const ub = new UserAgent();
    assert.equal((await signIn(ub, idp, central.url('hello.test', '/'), 'ada')).status, 200);
    const rd = central.url('hello.test', '/');
    const link = central.url('login.test', `${RELAY}signout?${new URLSearchParams({ rd, hop: 'stale' }).toString()}`);
    for (const init of [{ headers: CROSS_SITE }, { method: 'POST', headers: CROSS_SITE }, { method: 'HEAD' }]) assertAsks(await ub.fetch(link, init), 'Sign out of hello?', init.method ?? 'GET');
    const centralPage = await ub.fetch(link, { headers: CROSS_SITE });
    assert.match(centralPage.body, /signed in as <strong>ada@example\.com<\/strong>/);
    assert.ok(centralPage.body.includes(`href="${rd}">Stay signed in`));
    const action = new URL(confirmUrl(centralPage));
    assert.equal(`${action.origin}${action.pathname}`, central.url('login.test', `${RELAY}signout`));
    assert.deepEqual([...action.searchParams], [['rd', rd]]);
    assert.ok(sessionCookie(ub, 'login.test'));
    const done = await ub.fetch(action.href, { method: 'POST', headers: SAME_ORIGIN });
    assert.equal(done.status, 302);
    assert.ok(header(done, 'location')!.startsWith(`${idp.issuer}/session/end?`));
    const [event] = await central.store.listAudit({ type: 'user.signout', requestId: header(done, 'x-drawbridge-request-id')! });
    assert.equal(event?.details.provider, 'redirected', 'the central host took the step itself');
    const back = await confirmAtProvider(ub, await ub.navigate(header(done, 'location')!));
    assert.ok(back.body.includes(`href="${rd}">Sign in again`));
  });

  it('central: the app host’s hop token carries a sign-out the user started across sites (apps and sign-in host on different sites)', async () => {
    const ua = new UserAgent();
    assert.equal((await signIn(ua, idp, central.url('hello.test', '/'), 'ada')).status, 200);
    const centralCookie = sessionCookie(ua, 'login.test')!;
    const first = await ua.fetch(central.url('hello.test', `${RELAY}signout`), { headers: SAME_ORIGIN });
    const next = new URL(header(first, 'location')!);
    const hop = next.searchParams.get('hop')!;
    assert.ok(hop);

    // A hop token of another session, or a forged one, vouches for nothing.
    const codec = codecOf(central);
    for (const forged of [await codec.sealSignOutHop({ sid: 'another-session' }, 'login.test', 60_000), 'forged', await codec.sealSignOutHop({ sid: 'x' }, 'hello.test', 60_000)]) {
      const probe = new UserAgent();
      probe.setCookie('login.test', 'drawbridge_session', centralCookie);
      const url = new URL(next);
      url.searchParams.set('hop', forged);
      assertAsks(await probe.fetch(url.href, { headers: CROSS_SITE }), 'Sign out of hello?');
    }

    const out = await ua.fetch(next.href, { headers: CROSS_SITE });
    assert.equal(out.status, 302);
    assert.ok(header(out, 'location')!.startsWith(`${idp.issuer}/session/end?`));
    const back = await confirmAtProvider(ua, await ua.navigate(header(out, 'location')!));
    assert.match(back.body, /You have signed out of hello/);
  });

  it('another app of the same site, or an image in a page, ends neither the relay’s session nor the provider’s; the app’s own link still does, in one click', async () => {
    // Per-app sign-in: a link on a sibling app, an image in the app's own pages or in a sibling's.
    const { ua, cookie, hint, signout, events } = await signedInAtSolo();
    for (const [label, method, headers] of [
      ['a link on another app of the same site', 'GET', SAME_SITE],
      ['a form on another app of the same site', 'POST', SAME_SITE],
      ['an image in a page of the app', 'GET', IMAGE],
      ['an image in a page of another app of the same site', 'GET', SIBLING_IMAGE],
    ] as const) {
      assertAsks(await ua.fetch(signout, { method, headers }), 'Sign out of solo?', label);
    }
    assert.equal(sessionCookie(ua, 'solo.test'), cookie);
    assert.equal(hintCookie(ua, 'solo.test')?.value, hint, 'the kept ID token stays: nothing went to the provider');
    assert.equal((await solo.store.listAudit({ type: 'user.signout' })).length, events, 'nothing ended, nothing audited');
    // The app's own "Sign out" link: a same-origin navigation, straight on to the provider with the hint.
    const out = await ua.navigate(signout, { headers: NAVIGATE }, (location) => location.startsWith(idp.issuer));
    const end = new URL(out.chain[1]!);
    assert.equal(`${end.origin}${end.pathname}`, `${idp.issuer}/session/end`);
    assert.equal(decodeJwt(end.searchParams.get('id_token_hint')!).aud, 'solo');
    assert.equal(sessionCookie(ua, 'solo.test'), undefined);
    await confirmAtProvider(ua, await ua.navigate(out.chain[1]!));

    // Central sign-in with the apps and the sign-in host on one domain: a sibling's link or image, to either host, only asks.
    const ub = new UserAgent();
    assert.equal((await signIn(ub, idp, central.url('hello.test', '/'), 'ada')).status, 200);
    const rd = central.url('hello.test', '/');
    const centralLink = central.url('login.test', `${RELAY}signout?${new URLSearchParams({ rd }).toString()}`);
    for (const [label, url, headers] of [
      ['a sibling app’s link to the sign-in host', centralLink, SAME_SITE],
      ['a sibling app’s image of the sign-in host', centralLink, SIBLING_IMAGE],
      ['a sibling app’s link to the app host', central.url('hello.test', `${RELAY}signout`), SAME_SITE],
      ['an image in a page of the app', central.url('hello.test', `${RELAY}signout`), IMAGE],
    ] as const) {
      assertAsks(await ub.fetch(url, { headers }), 'Sign out of hello?', label);
    }
    assert.ok(sessionCookie(ub, 'hello.test'));
    assert.ok(sessionCookie(ub, 'login.test'));
    assert.ok(hintCookie(ub, 'login.test'));
    // The app's own link is still one click: its redirect reaches the sign-in host as same-site, and the hop vouches for it.
    const first = await ub.fetch(central.url('hello.test', `${RELAY}signout`), { headers: NAVIGATE });
    assert.equal(first.status, 302);
    const next = new URL(header(first, 'location')!);
    assert.ok(next.searchParams.get('hop'));
    const done = await ub.fetch(next.href, { headers: SAME_SITE });
    assert.equal(done.status, 302, done.body.slice(0, 300));
    const provider = new URL(header(done, 'location')!);
    assert.equal(`${provider.origin}${provider.pathname}`, `${idp.issuer}/session/end`);
    assert.ok(provider.searchParams.get('id_token_hint'));
    assert.equal(sessionCookie(ub, 'login.test'), undefined);
    await confirmAtProvider(ub, await ub.navigate(provider.href));
  });

  it('a failure in the provider step after the session ended (the store under the key ring) still clears the cookies, records the sign-out, and answers with the page', async (t) => {
    const { s, ua } = await keysFailAfterSignIn(t, idp, 'brittle', { hint: true });

    const out = await ua.fetch(s.url('brittle.test', `${RELAY}signout`), { headers: NAVIGATE });
    assert.equal(out.status, 200, out.body.slice(0, 300));
    assert.equal(header(out, 'location'), undefined);
    assert.equal(header(out, 'x-drawbridge-error'), 'ERR_INTERNAL');
    assert.match(out.body, /You have signed out of brittle/);
    assert.match(out.body, /Signing out at the identity provider did not work.*Sign out at the identity provider, or close the browser/s);
    assert.equal(sessionCookie(ua, 'brittle.test'), undefined, 'the session cookie is cleared');
    assert.equal(hintCookie(ua, 'brittle.test'), undefined, 'the kept ID token is cleared');
    assert.ok(await s.store.getSetting('auth.revoked.sid-brittle'), 'the session was revoked');
    const [event, ...more] = await s.store.listAudit({ type: 'user.signout', requestId: header(out, 'x-drawbridge-request-id')! });
    assert.deepEqual(more, []);
    assert.equal(event?.actor, 'ada');
    assert.deepEqual(event?.details, { method: 'oidc', closedStreams: 0, provider: 'unavailable', reason: 'ERR_INTERNAL' });
  });

  it('central: when the app host cannot seal its hop (the store under the key ring), it still signs out, and the sign-in host asks instead', async (t) => {
    const { s, ua, broken } = await keysFailAfterSignIn(t, idp, 'frail', { signInHost: 'login.frail.test' });

    const first = await ua.fetch(s.url('frail.test', `${RELAY}signout`), { headers: NAVIGATE });
    assert.equal(first.status, 302, first.body.slice(0, 300));
    const next = new URL(header(first, 'location')!);
    assert.equal(`${next.origin}${next.pathname}`, s.url('login.frail.test', `${RELAY}signout`));
    assert.equal(next.searchParams.get('hop'), null, 'no hop to vouch with');
    assert.equal(sessionCookie(ua, 'frail.test'), undefined);
    assert.ok(await s.store.getSetting('auth.revoked.sid-frail'));
    const [event] = await s.store.listAudit({ type: 'user.signout', requestId: header(first, 'x-drawbridge-request-id')! });
    assert.equal(event?.details.provider, 'central');

    // The store is back: without the hop, the redirect that arrives from another host asks; its button signs out there.
    broken.now = false;
    const asked = await ua.fetch(next.href, { headers: SAME_SITE });
    assertAsks(asked, 'Sign out of frail?');
    const done = await ua.fetch(confirmUrl(asked), { method: 'POST', headers: NAVIGATE });
    assert.equal(done.status, 302, done.body.slice(0, 300));
    assert.ok(header(done, 'location')!.startsWith(`${idp.issuer}/session/end?`));
    assert.equal(sessionCookie(ua, 'login.frail.test'), undefined);
  });

  it('with oidc.providerLogout off, sign-out stays at the relay as before, and the provider signs the user straight back in', async () => {
    const ua = new UserAgent();
    assert.equal((await signIn(ua, idp, off.url('quiet.test', '/'), 'ada')).status, 200);
    assert.equal(hintCookie(ua, 'quiet.test'), undefined, 'no ID token kept when it will not be used');
    const out = await ua.navigate(off.url('quiet.test', `${RELAY}signout`));
    assert.deepEqual(out.chain, [off.url('quiet.test', `${RELAY}signout`)]);
    assert.equal(out.status, 200);
    assert.equal(header(out, 'x-drawbridge-error'), undefined);
    assert.match(out.body, /You have signed out of quiet/);
    assert.equal(sessionCookie(ua, 'quiet.test'), undefined);
    assert.deepEqual((await off.store.listAudit({ type: 'user.signout' })).map((e) => e.details.provider), ['off']);

    const again = await ua.navigate(off.url('quiet.test', '/'));
    assert.equal(again.status, 200, 'signed in again without a password: the provider kept its session');
    assert.ok(again.chain.some((u) => u.startsWith(idp.issuer)) && !again.chain.some((u) => u.includes('/interaction/')), again.chain.join('\n'));
  });

  it('a provider without end_session_endpoint: sign-out stays at the relay as before', async () => {
    const discovery = await request(`${bareIdp.issuer}/.well-known/openid-configuration`);
    assert.equal(((await discovery.body.json()) as Record<string, unknown>).end_session_endpoint, undefined);
    const ua = new UserAgent();
    assert.equal((await signIn(ua, bareIdp, bare.url('bare.test', '/'), 'ada')).status, 200);
    assert.equal(hintCookie(ua, 'bare.test'), undefined);
    const out = await ua.navigate(bare.url('bare.test', `${RELAY}signout`));
    assert.deepEqual(out.chain, [bare.url('bare.test', `${RELAY}signout`)]);
    assert.equal(out.status, 200);
    assert.equal(header(out, 'x-drawbridge-error'), undefined);
    assert.match(out.body, /You have signed out of bare/);
    assert.deepEqual((await bare.store.listAudit({ type: 'user.signout' })).map((e) => e.details.provider), ['unsupported']);
  });

  it('a local session never goes to the provider, and its sign-out reaches a central host on another site in one step', async () => {
    const ua = new UserAgent();
    const form = await ua.navigate(central.url('wiki.test', '/'));
    assert.equal(form.status, 200);
    const app = await ua.navigate(central.url('login.test', `${RELAY}signin`), { form: { ...formFields(form.body), username: 'grace', password: 'pa55 word' } });
    assert.equal(app.status, 200, app.chain.join('\n'));
    // The app host vouches for local sessions too: a central host on another site signs out without asking.
    const first = await ua.fetch(central.url('wiki.test', `${RELAY}signout`), { headers: SAME_ORIGIN });
    const next = new URL(header(first, 'location')!);
    assert.equal(`${next.origin}${next.pathname}`, central.url('login.test', `${RELAY}signout`));
    assert.ok(next.searchParams.get('hop'));
    const out = await ua.fetch(next.href, { headers: CROSS_SITE });
    assert.equal(out.status, 200, out.body.slice(0, 300));
    assert.equal(header(out, 'location'), undefined);
    assert.equal(sessionCookie(ua, 'login.test'), undefined);
    assert.match(out.body, /You have signed out of wiki/);
    const [event] = await central.store.listAudit({ type: 'user.signout', requestId: header(first, 'x-drawbridge-request-id')! });
    assert.deepEqual(event?.details, { method: 'local', closedStreams: 0 }, 'no provider step to record');
  });

  it('an unreachable provider: the relay session still ends, and the page says what to do (ERR_OIDC_UNAVAILABLE)', async () => {
    const token = await codecOf(dead).sealSession({ sid: 'sid-unreachable', kind: 'oidc', sub: 'ada', email: 'ada@example.com', expiresAt: Date.now() + 600_000 }, 'dead.test');
    const ua = new UserAgent();
    ua.setCookie('dead.test', 'drawbridge_session', token);
    const out = await ua.navigate(dead.url('dead.test', `${RELAY}signout`));
    assert.equal(out.status, 200);
    assert.equal(header(out, 'x-drawbridge-error'), 'ERR_OIDC_UNAVAILABLE');
    assert.match(out.body, /You have signed out of dead/);
    assert.match(out.body, /Signing out at the identity provider did not work.*Sign out at the identity provider, or close the browser/s);
    assert.match(out.body, /<code>ERR_OIDC_UNAVAILABLE<\/code>/);
    assert.equal(sessionCookie(ua, 'dead.test'), undefined);
    assert.ok(await dead.store.getSetting('auth.revoked.sid-unreachable'), 'the session was revoked');
    const [event] = await dead.store.listAudit({ type: 'user.signout' });
    assert.equal(event?.actor, 'ada');
    assert.deepEqual([event?.details.provider, event?.details.reason], ['unavailable', 'ERR_OIDC_UNAVAILABLE']);
  });

  it('neither rd nor the post-logout page is an open redirect', async () => {
    const ua = new UserAgent();
    assert.equal((await signIn(ua, idp, central.url('hello.test', '/'), 'ada')).status, 200);
    // A sign-out link with a foreign rd (and a post_logout_redirect_uri of its own) on the central host.
    const evil = 'https://evil.example/';
    const link = central.url('login.test', `${RELAY}signout?rd=${encodeURIComponent(evil)}&post_logout_redirect_uri=${encodeURIComponent(evil)}`);
    const out = await ua.navigate(link, {}, (location) => location.startsWith(idp.issuer));
    const end = new URL(out.chain[1]!);
    assert.equal(end.searchParams.get('post_logout_redirect_uri'), central.url('login.test', `${RELAY}signedout`));
    const back = await confirmAtProvider(ua, await ua.navigate(out.chain[1]!));
    assert.equal(back.status, 200);
    assert.ok(back.url.startsWith(central.url('login.test', `${RELAY}signedout?state=`)));
    assert.doesNotMatch(back.body, /Sign in again|evil/);

    // The post-logout page is a page, never a redirect, and links only where a state it sealed for this host says, if the redirect rules allow it.
    const codec = codecOf(central);
    const hello = central.url('hello.test', '/');
    const states: Array<[string, string | undefined, string | undefined]> = [
      ['sealed here, to an app', await codec.sealLogout({ returnTo: hello }, 'login.test', 60_000), hello],
      ['sealed here, to a foreign host', await codec.sealLogout({ returnTo: evil }, 'login.test', 60_000), undefined],
      ['sealed here, to another port', await codec.sealLogout({ returnTo: `http://hello.test:${Number(central.port) + 1}/` }, 'login.test', 60_000), undefined],
      ['sealed for another host', await codec.sealLogout({ returnTo: hello }, 'hello.test', 60_000), undefined],
      ['a session cookie instead', await codec.sealSession({ sid: 's', kind: 'oidc', sub: 'ada', expiresAt: Date.now() + 60_000 }, 'login.test'), undefined],
      ['forged', 'not-a-jwe', undefined],
      ['absent', undefined, undefined],
    ];
    for (const [label, state, link] of states) {
      const page = await new UserAgent().fetch(central.url('login.test', `${RELAY}signedout?${new URLSearchParams({ ...(state ? { state } : {}), rd: evil }).toString()}`));
      assert.equal(page.status, 200, label);
      assert.equal(header(page, 'location'), undefined, label);
      assert.equal(header(page, 'cache-control'), 'no-store', label);
      assert.doesNotMatch(page.body, /evil/, label);
      if (link) assert.ok(page.body.includes(`href="${link}">Sign in again`), label);
      else assert.doesNotMatch(page.body, /Sign in again/, label);
    }
    // App hosts of a central deployment have no post-logout page.
    assert.equal((await new UserAgent().fetch(central.url('hello.test', `${RELAY}signedout`))).status, 404);

    // Per-app: the app host's page links only to a path on itself.
    const soloPage = await new UserAgent().fetch(solo.url('solo.test', `${RELAY}signedout?state=${await codecOf(solo).sealLogout({ returnTo: '//evil.example/' }, 'solo.test', 60_000)}`));
    assert.ok(soloPage.body.includes('href="/">Sign in again'));
    assert.doesNotMatch(soloPage.body, /evil/);
  });
});
