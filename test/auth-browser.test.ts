/**
 * A person's path in a real headless Chromium: open the app URL, land on the
 * sign-in page, sign in, see the app with the headers it received, sign out,
 * and be back at sign-in. Once with a local account on the central sign-in
 * host, once through a real OpenID provider's login page.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { hashPassword } from '../packages/relay/src/auth/index.ts';
import { type AuthStack, startAuthStack } from './helpers/auth-stack.ts';
import { startIdp, type TestIdp } from './helpers/idp.ts';

const CHROMIUM = process.env.DRAWBRIDGE_TEST_CHROMIUM ?? '/usr/bin/chromium';
const RULES = [
  { name: 'X-Remote-User', value: '{email}' },
  { name: 'X-Remote-Name', value: '{name}' },
  { name: 'X-Remote-Groups', value: '{groups}' },
];

// Developers without Chromium skip this; CI installs it and must never skip it.
describe('a person in a browser', { skip: existsSync(CHROMIUM) || process.env.CI ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium)` }, () => {
  let idp: TestIdp;
  let s: AuthStack;
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
    idp.configure({ clients: [{ client_id: 'relay', client_secret: 'relay-secret', redirect_uris: [s.url('login.test', '/.well-known/drawbridge/callback')] }] });
    await s.store.createUser({ name: 'ada@example.com', passwordHash: await hashPassword('pa55 word', { logN: 10 }), groups: ['staff'] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP *.test 127.0.0.1'],
    });
  });
  after(async () => {
    await browser?.close();
    await s?.close();
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

  it('signs in through the identity provider’s login page and back to the app', async () => {
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

    await page.click('#signout');
    await page.waitForURL((url) => url.pathname === '/.well-known/drawbridge/signout');
    assert.equal(await page.textContent('h1'), 'You have signed out of hello');
    await context.close();
  });
});
