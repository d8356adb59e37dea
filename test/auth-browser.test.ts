/**
 * A person's path in a real headless Chromium: open the app URL, land on the
 * sign-in page, sign in, see the app with the headers it received, sign out,
 * and be back at sign-in. Once with a local account on the central sign-in
 * host, once through a real OpenID provider's login page, where signing out
 * also signs out at the provider (so signing in again asks for a password),
 * unless the operator turned that off. On `*.localhost` hosts (secure
 * contexts, so Chromium sends Fetch Metadata, and each host its own site) a
 * sign-out link or form on another site ends nothing and gets a page that
 * asks, whose button signs out, while the user's own sign-out is one click
 * across the sites of app and sign-in host, to the provider too; and an
 * image of the sign-out URL, in a page of the app or of a sibling app on
 * the same site, signs nobody out.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page, type Request } from 'playwright-core';
import { hashPassword } from '../packages/relay/src/auth/index.ts';
import { type AuthStack, startAuthStack } from './helpers/auth-stack.ts';
import { startIdp, type TestIdp } from './helpers/idp.ts';

const CHROMIUM = process.env.DRAWBRIDGE_TEST_CHROMIUM ?? '/usr/bin/chromium';
const RULES = [
  { name: 'X-Remote-User', value: '{email}' },
  { name: 'X-Remote-Name', value: '{name}' },
  { name: 'X-Remote-Groups', value: '{groups}' },
];

/** The request for `url` once it has finished or failed (Chromium blocks some answers to images: ORB). */
function settled(page: Page, url: string): Promise<Request> {
  return new Promise((resolve) => {
    const done = (request: Request): void => {
      if (request.url() !== url) return;
      page.off('requestfinished', done);
      page.off('requestfailed', done);
      resolve(request);
    };
    page.on('requestfinished', done);
    page.on('requestfailed', done);
  });
}

/** Signs in as grace at the test provider from `url`, and waits to be back on it. */
async function signInAsGrace(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.fill('#idp-login', 'grace');
  await page.click('#idp-submit');
  await page.waitForURL(url);
}

/** The hosts holding a relay session cookie, sorted. */
async function sessionHosts(context: BrowserContext): Promise<string[]> {
  return (await context.cookies())
    .filter((c) => c.name === 'drawbridge_session')
    .map((c) => c.domain)
    .sort();
}

// Developers without Chromium skip this; CI installs it and must never skip it.
describe('a person in a browser', { skip: existsSync(CHROMIUM) || process.env.CI ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)` }, () => {
  let idp: TestIdp;
  let s: AuthStack;
  /** Per-app sign-in with `providerLogout: false`. */
  let quiet: AuthStack;
  /** Central sign-in on `*.localhost`: app host and sign-in host are different sites. */
  let far: AuthStack;
  /** Another site, with a link to the relay's sign-out. */
  let elsewhere: http.Server;
  let elsewhereUrl: string;
  let browser: Browser;

  before(async () => {
    idp = await startIdp();
    idp.users.set('grace', { email: 'grace@example.com', email_verified: true, name: 'Grace Hopper', groups: ['navy'] });
    s = await startAuthStack(
      [
        { name: 'wiki', externalHost: 'wiki.test', preauth: 'local', headers: RULES, assignments: [{ kind: 'group', id: 'staff' }] },
        { name: 'hello', externalHost: 'hello.test', preauth: 'oidc', headers: RULES, assignments: [{ kind: 'group', id: 'navy' }] },
      ],
      { signInHost: 'login.test', oidc: { issuer: idp.issuer, clientId: 'relay', clientSecret: 'relay-secret', scopes: ['openid', 'email', 'profile', 'groups'] } },
    );
    far = await startAuthStack(
      [
        { name: 'far', externalHost: 'hello.localhost', preauth: 'oidc', headers: RULES, assignments: [{ kind: 'group', id: 'navy' }] },
        { name: 'notes', externalHost: 'notes.localhost', preauth: 'local', headers: RULES, assignments: [{ kind: 'group', id: 'staff' }] },
        // A sibling of hello.localhost on the same site, open to anyone's content.
        { name: 'forum', externalHost: 'forum.hello.localhost', preauth: 'passthrough' },
      ],
      {
      signInHost: 'login.localhost',
        oidc: { issuer: idp.issuer, clientId: 'far', clientSecret: 'far-secret', scopes: ['openid', 'email', 'profile', 'groups'] },
      },
    );
    quiet = await startAuthStack([{ name: 'quiet', externalHost: 'quiet.test', preauth: 'oidc', headers: RULES, assignments: [{ kind: 'group', id: 'navy' }] }], {
      oidc: { issuer: idp.issuer, clientId: 'quiet', clientSecret: 'quiet-secret', scopes: ['openid', 'email', 'profile', 'groups'], providerLogout: false },
    });
    idp.configure({
      clients: [
        {
          client_id: 'relay',
          client_secret: 'relay-secret',
          redirect_uris: [s.url('login.test', '/.well-known/drawbridge/callback')],
          post_logout_redirect_uris: [s.url('login.test', '/.well-known/drawbridge/signedout')],
        },
        { client_id: 'quiet', client_secret: 'quiet-secret', redirect_uris: [quiet.url('quiet.test', '/.well-known/drawbridge/callback')] },
        {
          client_id: 'far',
          client_secret: 'far-secret',
          redirect_uris: [far.url('login.localhost', '/.well-known/drawbridge/callback')],
          post_logout_redirect_uris: [far.url('login.localhost', '/.well-known/drawbridge/signedout')],
        },
      ],
    });
    elsewhere = http.createServer((_req, res) => {
      const signout = far.url('hello.localhost', '/.well-known/drawbridge/signout');
      const html = `<!doctype html><title>elsewhere</title><a id="out" href="${signout}">Free prize</a><form method="post" action="${signout}"><button id="post-out">Another prize</button></form><a id="notes-out" href="${far.url('notes.localhost', '/.well-known/drawbridge/signout')}">Notes</a>`;
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) });
      res.end(html);
    });
    elsewhere.listen(0, '127.0.0.1');
    await once(elsewhere, 'listening');
    elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`;
    const passwordHash = await hashPassword('pa55 word', { logN: 10 });
    await s.store.createUser({ name: 'ada@example.com', passwordHash, groups: ['staff'] });
    await far.store.createUser({ name: 'ada@example.com', passwordHash, groups: ['staff'] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP *.test 127.0.0.1, MAP *.localhost 127.0.0.1'],
    });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
    await quiet?.close();
    await far?.close();
    elsewhere?.closeAllConnections();
    await new Promise<void>((r) => (elsewhere ? elsewhere.close(() => r()) : r()));
    await idp?.close();
  });

  it('signs in with a local account, sees the app and its headers, signs out, and is back at sign-in', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(s.url('wiki.test', '/page/home'));
    assert.equal(new URL(page.url()).host, `login.test:${s.port}`);
    assert.equal(await page.textContent('h1'), 'Sign in to wiki');

    await page.fill('#username', 'ada@example.com');
    await page.fill('#password', 'wrong');
    await page.click('button[type=submit]');
    assert.equal(await page.textContent('.error'), 'Wrong user name or password.');
    await page.fill('#password', 'pa55 word');
    await page.click('button[type=submit]');
    await page.waitForURL(s.url('wiki.test', '/page/home'));
    const headers = JSON.parse((await page.textContent('#headers'))!) as Record<string, string>;
    assert.equal(headers['x-remote-user'], 'ada@example.com');
    assert.equal(headers['x-remote-groups'], 'staff');
    assert.ok(headers['x-drawbridge-assertion']);
    assert.equal(headers.cookie, undefined, 'the app never sees the relay cookie');

    const cookies = await context.cookies();
    const session = cookies.find((c) => c.domain === 'wiki.test' && c.name === 'drawbridge_session');
    assert.ok(session, 'host-only session cookie on the app host');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');

    await page.click('#signout');
    await page.waitForURL((url) => url.pathname === '/.well-known/drawbridge/signout');
    assert.equal(await page.textContent('h1'), 'You have signed out of wiki');
    await page.click('text=Sign in again');
    await page.waitForURL((url) => url.pathname === '/.well-known/drawbridge/signin');
    assert.equal(await page.textContent('h1'), 'Sign in to wiki');
    await context.close();
  });

  it('signs in through the identity provider’s login page, signs out there too, and must give the password again', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(s.url('hello.test', '/page/start'));
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`), page.url());
    await page.fill('#idp-login', 'grace');
    await page.click('#idp-submit');
    await page.waitForURL(s.url('hello.test', '/page/start'));
    const headers = JSON.parse((await page.textContent('#headers'))!) as Record<string, string>;
    assert.equal(headers['x-remote-user'], 'grace@example.com');
    assert.equal(headers['x-remote-name'], 'Grace Hopper');
    assert.equal(headers['x-remote-groups'], 'navy');

    // The relay ends its session, then the provider asks whether to end its own.
    await page.click('#signout');
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/session/end?`));
    assert.equal(await page.textContent('h1'), 'Sign out of the test IdP?');
    assert.deepEqual(
      (await context.cookies()).filter((c) => c.name === 'drawbridge_session').map((c) => c.domain),
      [],
      'the relay cleared its cookies on the app host and the sign-in host before leaving',
    );
    await page.click('#idp-logout-yes');
    await page.waitForURL((url) => url.host === `login.test:${s.port}` && url.pathname === '/.well-known/drawbridge/signedout');
    assert.equal(await page.textContent('h1'), 'You have signed out of hello');

    // Signing in again now takes the password at the provider: its session is gone.
    await page.click('text=Sign in again');
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/interaction/`));
    await page.fill('#idp-login', 'grace');
    await page.click('#idp-submit');
    await page.waitForURL(s.url('hello.test', '/'));
    await context.close();
  });

  it('with provider logout off, signs out of the relay only, and “Sign in again” passes the provider without a password', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const visited: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) visited.push(frame.url());
    });
    await page.goto(quiet.url('quiet.test', '/page/start'));
    await page.fill('#idp-login', 'grace');
    await page.click('#idp-submit');
    await page.waitForURL(quiet.url('quiet.test', '/page/start'));

    await page.click('#signout');
    await page.waitForURL((url) => url.pathname === '/.well-known/drawbridge/signout');
    assert.equal(await page.textContent('h1'), 'You have signed out of quiet');
    visited.length = 0;
    await page.click('text=Sign in again');
    await page.waitForURL(quiet.url('quiet.test', '/'));
    assert.ok(!visited.some((u) => u.startsWith(idp.issuer)), `never stopped at the provider: ${visited.join(' ')}`);
    await context.close();
  });
  it('across sites: the user’s own sign-out is one click, to the provider too; another site’s link or form only gets a question, whose button signs out', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    /** `Sec-Fetch-Site` of each host's sign-out request, as Chromium sent it. */
    const fetchSite = new Map<string, Promise<string | undefined>>();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname === '/.well-known/drawbridge/signout') fetchSite.set(url.host, request.allHeaders().then((h) => h['sec-fetch-site']));
    });
    const hello = `hello.localhost:${far.port}`;
    const login = `login.localhost:${far.port}`;
    const signIn = (): Promise<void> => signInAsGrace(page, far.url('hello.localhost', '/page/start'));
    const sessions = (): Promise<string[]> => sessionHosts(context);
    await signIn();

    // The user's click: same-origin on the app host, cross-site by the time it reaches login.localhost, vouched for by the app host.
    await page.click('#signout');
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/session/end?`));
    assert.equal(await fetchSite.get(hello), 'same-origin');
    assert.equal(await fetchSite.get(login), 'cross-site', 'Chromium sent Fetch Metadata and saw two sites');
    await page.click('#idp-logout-yes');
    await page.waitForURL((url) => url.host === login && url.pathname === '/.well-known/drawbridge/signedout');
    assert.equal(await page.textContent('h1'), 'You have signed out of far');

    // Another site's link: nothing ends; the relay asks, naming the account.
    await signIn();
    fetchSite.clear();
    await page.goto(elsewhereUrl);
    await page.click('#out');
    await page.waitForURL((url) => url.host === hello && url.pathname === '/.well-known/drawbridge/signout');
    assert.equal(await fetchSite.get(hello), 'cross-site');
    assert.equal(await page.textContent('h1'), 'Sign out of far?');
    assert.equal(await page.textContent('strong'), 'grace@example.com');
    assert.deepEqual(await sessions(), ['hello.localhost', 'login.localhost']);

    // Another site's form: the SameSite=Lax cookie does not travel with it, and the answer deletes none.
    await page.goto(elsewhereUrl);
    await page.click('#post-out');
    await page.waitForURL((url) => url.host === hello && url.pathname === '/.well-known/drawbridge/signout');
    assert.equal(await page.textContent('h1'), 'Sign out of far?');
    assert.deepEqual(await sessions(), ['hello.localhost', 'login.localhost']);
    const app = await page.goto(far.url('hello.localhost', '/page/start'));
    assert.equal(app?.request().redirectedFrom(), null, 'still signed in: no detour through sign-in');

    // The question's button posts from the relay's own page: the user's sign-out, to the provider too.
    await page.goto(elsewhereUrl);
    await page.click('#out');
    await page.waitForURL((url) => url.host === hello && url.pathname === '/.well-known/drawbridge/signout');
    fetchSite.clear();
    await page.click('button[type=submit]');
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/session/end?`));
    assert.equal(await fetchSite.get(hello), 'same-origin');
    assert.equal(await fetchSite.get(login), 'cross-site');
    assert.deepEqual(await sessions(), []);
    await page.click('#idp-logout-yes');
    await page.waitForURL((url) => url.host === login && url.pathname === '/.well-known/drawbridge/signedout');
    assert.equal(await page.textContent('h1'), 'You have signed out of far');
    await page.click('text=Sign in again');
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/interaction/`));
    await context.close();
  });

  it('an image of the sign-out URL in a page of the app, or of another app of the same site, signs nobody out', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const signout = far.url('hello.localhost', '/.well-known/drawbridge/signout');
    await signInAsGrace(page, far.url('hello.localhost', '/page/start'));
    const sessions = (): Promise<string[]> => sessionHosts(context);
    assert.deepEqual(await sessions(), ['hello.localhost', 'login.localhost']);
    const signouts = (await far.store.listAudit({ type: 'user.signout' })).length;

    // User content with <img src=".../.well-known/drawbridge/signout">: on the app's own page (same-origin), on a sibling app's (same-site).
    for (const [label, url, site] of [
      ['a page of the app', far.url('hello.localhost', `/page/post?img=${encodeURIComponent('/.well-known/drawbridge/signout')}`), 'same-origin'],
      ['a page of another app of the same site', far.url('forum.hello.localhost', `/page/post?img=${encodeURIComponent(signout)}`), 'same-site'],
    ] as const) {
      const answered = settled(page, signout);
      await page.goto(url);
      const request = await answered;
      assert.equal(request.resourceType(), 'image', label);
      assert.equal(new URL(request.headers().referer!).host, new URL(url).host, label);
      // Another origin's HTML answer to an image Chromium blocks (ORB) once its cookies were handled, and then reports only provisional headers.
      if (site === 'same-origin') {
        const sent = await request.allHeaders();
        assert.deepEqual([sent['sec-fetch-site'], sent['sec-fetch-mode'], sent['sec-fetch-dest']], [site, 'no-cors', 'image'], `${label}: Chromium sent Fetch Metadata`);
        assert.ok(sent.cookie?.includes('drawbridge_session='), `${label}: with the session cookie`);
        const res = await request.response();
        assert.equal(res?.status(), 200, label);
        assert.equal(await res?.headerValue('set-cookie'), null, label);
      }
      assert.deepEqual(await sessions(), ['hello.localhost', 'login.localhost'], label);
    }
    const app = await page.goto(far.url('hello.localhost', '/page/start'));
    assert.equal(app?.request().redirectedFrom(), null, 'still signed in: no detour through sign-in');
    assert.equal((await far.store.listAudit({ type: 'user.signout' })).length, signouts, 'nothing ended');

    // The app's own "Sign out" link on the same page is still one click, to the provider too.
    await page.click('#signout');
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/session/end?`));
    assert.deepEqual(await sessions(), []);
    await context.close();
  });

  it('across sites, a local account’s own sign-out is one click too, and another site’s link only asks', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(far.url('notes.localhost', '/page/home'));
    assert.equal(new URL(page.url()).host, `login.localhost:${far.port}`);
    await page.fill('#username', 'ada@example.com');
    await page.fill('#password', 'pa55 word');
    await page.click('button[type=submit]');
    await page.waitForURL(far.url('notes.localhost', '/page/home'));
    await page.goto(elsewhereUrl);
    await page.click('#notes-out');
    await page.waitForURL((url) => url.host === `notes.localhost:${far.port}` && url.pathname === '/.well-known/drawbridge/signout');
    assert.equal(await page.textContent('h1'), 'Sign out of notes?');
    assert.equal(await page.textContent('strong'), 'ada@example.com');
    await page.goto(far.url('notes.localhost', '/page/home'));
    assert.equal(page.url(), far.url('notes.localhost', '/page/home'), 'still signed in');
    const centralSignOut = page.waitForRequest((r) => new URL(r.url()).host === `login.localhost:${far.port}` && new URL(r.url()).pathname === '/.well-known/drawbridge/signout');
    await page.click('#signout');
    assert.equal((await (await centralSignOut).allHeaders())['sec-fetch-site'], 'cross-site');
    await page.waitForURL((url) => url.host === `login.localhost:${far.port}` && url.pathname === '/.well-known/drawbridge/signout');
    assert.equal(await page.textContent('h1'), 'You have signed out of notes');
    assert.deepEqual((await context.cookies()).filter((c) => c.name === 'drawbridge_session'), []);
    await context.close();
  });
});
