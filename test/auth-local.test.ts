/**
 * Local users end to end, signing in on each app's own host: the sign-in form,
 * wrong passwords, CSRF, rate limits per user and per address, return paths
 * that try to leave the host, the 403 page, SSO headers at the app,
 * disabling a user or removing an assignment closing their open streams, and
 * sign-out that only the user's own click ends (never HEAD, another site's or
 * a sibling app's link or form, an image in a page).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { WebSocket } from 'ws';
import { hashPassword } from '../packages/relay/src/auth/index.ts';
import type { AuditEvent, LocalUser } from '../packages/relay/src/store/index.ts';
import { type AuthStack, type Echo, startAuthStack } from './helpers/auth-stack.ts';
import { client } from './helpers/harness.ts';
import { formFields, header, unescapeHtml, UserAgent } from './helpers/user-agent.ts';

const PASSWORD = 'correct horse battery staple';

describe('local users, sign-in on the app host', () => {
  let s: AuthStack;
  const users: Record<string, LocalUser> = {};

  before(async () => {
    s = await startAuthStack(
      [
        {
          name: 'wiki',
          externalHost: 'wiki.test',
          preauth: 'local',
          headers: [
            { name: 'X-Remote-User', value: '{name}' },
            { name: 'X-Remote-Groups', value: '{groups}' },
          ],
          assignments: [{ kind: 'group', id: 'staff' }],
        },
        { name: 'open', externalHost: 'open.test', preauth: 'passthrough', headers: [{ name: 'X-Remote-User', value: '{name}' }] },
      ],
      { local: { perUser: 3, perAddress: 6, windowMs: 60_000 } },
    );
    // A cheap scrypt cost keeps the suite fast; the format and code path are the same.
    const passwordHash = await hashPassword(PASSWORD, { logN: 10 });
    for (const [name, groups] of [['ada', ['staff']], ['bob', []], ['dan', ['staff']], ['eve', ['staff']], ['flo', ['staff']], ['gil', ['staff', ...Array.from({ length: 1200 }, (_, i) => `group-number-${i}`)]]] as const) {
      users[name] = await s.store.createUser({ name, passwordHash, groups: [...groups] });
    }
  });
  after(() => s.close());

  async function audit(type: string, requestId?: string): Promise<AuditEvent[]> {
    return s.store.listAudit({ type, ...(requestId ? { requestId } : {}) });
  }

  /** Opens `path`, lands on the form, posts it; returns the final page. */
  async function signIn(ua: UserAgent, name: string, path = '/', password = PASSWORD): Promise<ReturnType<UserAgent['navigate']>> {
    const form = await ua.navigate(s.url('wiki.test', path));
    assert.equal(form.status, 200, form.body.slice(0, 300));
    assert.match(form.body, /Sign in to wiki/);
    const fields = formFields(form.body);
    return ua.navigate(s.url('wiki.test', '/.well-known/drawbridge/signin'), { form: { ...fields, username: name, password } });
  }

  it('sends a browser to the sign-in form and back to where it was going, with SSO headers', async () => {
    const ua = new UserAgent();
    const first = await ua.fetch(s.url('wiki.test', '/docs/page?a=1&b=2'));
    assert.equal(first.status, 302);
    assert.equal(header(first, 'location'), `/.well-known/drawbridge/signin?rd=${encodeURIComponent('/docs/page?a=1&b=2')}`);
    const page = await signIn(ua, 'ada', '/docs/page?a=1&b=2');
    assert.equal(page.status, 200);
    const echo = JSON.parse(page.body) as Echo;
    assert.equal(echo.url, '/docs/page?a=1&b=2');
    assert.equal(echo.headers['x-remote-user'], 'ada');
    assert.equal(echo.headers['x-remote-groups'], 'staff');
    assert.ok(echo.headers['x-drawbridge-assertion']);
    const session = ua.cookies('wiki.test').find((c) => c.name === 'drawbridge_session');
    assert.ok(session, 'a host-only session cookie');
    const [event] = await audit('user.signin');
    assert.equal(event?.outcome, 'success');
    assert.equal(event?.actor, users.ada!.id);
    assert.equal(event?.app, s.apps.get('wiki')!.id);
    assert.equal(event?.address, '127.0.0.1');
  });

  it('removes spoofed SSO headers, X-Drawbridge-* and the relay cookie before the app sees the request', async () => {
    const ua = new UserAgent();
    await signIn(ua, 'ada');
    ua.setCookie('wiki.test', 'theme', 'dark');
    ua.setCookie('wiki.test', 'drawbridge_flow', 'x', '/');
    const page = await ua.fetch(s.url('wiki.test', '/check'), { headers: { 'x-remote-user': 'root', 'X-Remote-Groups': 'admins', 'x-drawbridge-assertion': 'forged' } });
    const echo = JSON.parse(page.body) as Echo;
    assert.equal(echo.headers['x-remote-user'], 'ada');
    assert.equal(echo.headers['x-remote-groups'], 'staff');
    assert.notEqual(echo.headers['x-drawbridge-assertion'], 'forged');
    assert.equal(echo.headers.cookie, 'theme=dark');

    const open = await ua.fetch(s.url('open.test', '/'), { headers: { 'x-remote-user': 'root', cookie: 'drawbridge_session=abc; theme=dark' } });
    const openEcho = JSON.parse(open.body) as Echo;
    assert.equal(openEcho.headers['x-remote-user'], undefined, 'a passthrough app gets no identity, and no spoofed one');
    assert.equal(openEcho.headers.cookie, 'theme=dark');
  });

  it('answers a wrong password with the form and an audit event', async () => {
    const ua = new UserAgent();
    const page = await signIn(ua, 'dan', '/', 'wrong');
    assert.equal(page.status, 401);
    assert.equal(header(page, 'x-drawbridge-error'), 'ERR_SIGNIN_BAD_CREDENTIALS');
    assert.match(page.body, /Wrong user name or password/);
    const unknown = await signIn(ua, 'nobody', '/', 'wrong');
    assert.equal(header(unknown, 'x-drawbridge-error'), 'ERR_SIGNIN_BAD_CREDENTIALS', 'an unknown name looks like a wrong password');
    const failures = (await audit('user.signin')).filter((e) => e.outcome === 'failure');
    assert.ok(failures.some((e) => e.details.user === 'dan' && e.details.reason === 'ERR_SIGNIN_BAD_CREDENTIALS'));
  });

  it('refuses a form posted without its CSRF cookie', async () => {
    const ua = new UserAgent();
    const form = await ua.navigate(s.url('wiki.test', '/'));
    const fields = formFields(form.body);
    const other = new UserAgent();
    const page = await other.fetch(s.url('wiki.test', '/.well-known/drawbridge/signin'), { form: { ...fields, username: 'ada', password: PASSWORD } });
    assert.equal(page.status, 403);
    assert.equal(header(page, 'x-drawbridge-error'), 'ERR_SIGNIN_CSRF');
  });

  it('answers a form post that announces no body at all, rather than waiting for one', async () => {
    // No Content-Length, no Transfer-Encoding: the listener hands the request over with its body already ended.
    const url = new URL(s.url('wiki.test', '/'));
    const sock = connect(Number(url.port), '127.0.0.1');
    await once(sock, 'connect');
    sock.write(`POST /.well-known/drawbridge/signin HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n`);
    let raw = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (raw += d));
    await once(sock, 'end', { signal: AbortSignal.timeout(10_000) });
    assert.match(raw, /^HTTP\/1\.1 403 /);
    assert.match(raw, /x-drawbridge-error: ERR_SIGNIN_CSRF/i);
  });

  it('goes only to paths on the same host after sign-in (no open redirect)', async () => {
    for (const rd of ['//evil.test/x', '/\\evil.test', 'http://evil.test/', 'https:evil.test', '/%0d%0aSet-Cookie:x=1']) {
      const ua = new UserAgent();
      const form = await ua.navigate(s.url('wiki.test', `/.well-known/drawbridge/signin?rd=${encodeURIComponent(rd)}`));
      const fields = formFields(form.body);
      const res = await ua.fetch(s.url('wiki.test', '/.well-known/drawbridge/signin'), { form: { ...fields, username: 'ada', password: PASSWORD } });
      assert.equal(res.status, 302, rd);
      const location = header(res, 'location')!;
      assert.ok(location === '/' || location.startsWith('/%0D%0A') || location.startsWith('/%0d%0a'), `${rd} → ${location}`);
      assert.equal(new URL(location, 'http://wiki.test').host, 'wiki.test', `${rd} → ${location}`);
    }
  });

  it('shows a 403 page naming the app and the account to an unassigned user', async () => {
    const ua = new UserAgent();
    const page = await signIn(ua, 'bob');
    assert.equal(page.status, 403);
    assert.equal(header(page, 'x-drawbridge-error'), 'ERR_ACCESS_DENIED');
    assert.match(page.body, /You do not have access to wiki/);
    assert.match(page.body, /signed in as <strong>bob<\/strong>/);
    const denied = await audit('access.denied', header(page, 'x-drawbridge-request-id'));
    assert.equal(denied.length, 1);
    assert.equal(denied[0]!.actor, users.bob!.id);
  });

  it('refuses an API call or an upgrade without a session instead of redirecting it', async () => {
    const res = await request(s.url('wiki.test', '/api').replace('wiki.test', '127.0.0.1'), { headers: { host: `wiki.test:${s.port}`, 'sec-fetch-mode': 'cors' }, dispatcher: client });
    await res.body.dump();
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['x-drawbridge-error'], 'ERR_AUTH_REQUIRED');
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`, { headers: { host: `wiki.test:${s.port}` } });
    const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; headers: Record<string, string> }];
    assert.equal(response.statusCode, 401);
    assert.equal(response.headers['x-drawbridge-error'], 'ERR_AUTH_REQUIRED');
    ws.on('error', () => undefined);
    ws.terminate();
  });

  it('fails with a clear error and an audit event when an SSO header would be too large, never truncating it', async () => {
    const ua = new UserAgent();
    const page = await signIn(ua, 'gil');
    assert.equal(page.status, 500);
    assert.equal(header(page, 'x-drawbridge-error'), 'ERR_SSO_HEADER_TOO_LARGE');
    const [event] = await audit('sso.header_failed', header(page, 'x-drawbridge-request-id'));
    assert.equal(event?.details.header, 'X-Remote-Groups');
    assert.equal(event?.details.reason, 'ERR_SSO_HEADER_TOO_LARGE');
  });

  it('closes a disabled user’s open stream at once and sends the next request to sign-in', async () => {
    const ua = new UserAgent();
    await signIn(ua, 'dan');
    const cookie = ua.cookies('wiki.test').map((c) => `${c.name}=${c.value}`).join('; ');
    const opened = once(s.events, 'sse-open');
    const sse = await request(`http://127.0.0.1:${s.port}/sse`, { headers: { host: `wiki.test:${s.port}`, cookie }, dispatcher: client });
    await opened;
    const closed = once(s.events, 'sse-close');
    const ended = new Promise<string>((resolve) => {
      sse.body.on('error', (err: Error) => resolve(err.message));
      sse.body.on('end', () => resolve('end'));
      sse.body.resume();
    });
    await s.store.updateUser(users.dan!.id, { disabled: true });
    await closed;
    await ended;
    const next = await ua.fetch(s.url('wiki.test', '/'));
    assert.equal(next.status, 302);
    assert.match(header(next, 'location')!, /signin/);
    const again = await signIn(ua, 'dan');
    assert.equal(header(again, 'x-drawbridge-error'), 'ERR_SIGNIN_USER_DISABLED');
    const [closedEvent] = (await audit('session.streams_closed')).filter((e) => e.actor === users.dan!.id);
    assert.equal(closedEvent?.details.reason, 'user-changed');
  });

  it('closes open streams and WebSockets when the assignment is removed; the next request gets 403', async () => {
    const ua = new UserAgent();
    await signIn(ua, 'flo');
    const cookie = ua.cookies('wiki.test').map((c) => `${c.name}=${c.value}`).join('; ');
    const opened = once(s.events, 'sse-open');
    const sse = await request(`http://127.0.0.1:${s.port}/sse`, { headers: { host: `wiki.test:${s.port}`, cookie }, dispatcher: client });
    sse.body.on('error', () => undefined);
    sse.body.resume();
    await opened;
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`, { headers: { host: `wiki.test:${s.port}`, cookie } });
    const [hello] = (await once(ws, 'message')) as [Buffer];
    assert.equal((JSON.parse(hello.toString()) as { headers: Record<string, string> }).headers['x-remote-user'], 'flo');
    const sseClosed = once(s.events, 'sse-close');
    const wsClosed = once(ws, 'close');
    await s.updateApp('wiki', { assignments: [{ kind: 'user', id: 'ada' }] });
    await Promise.all([sseClosed, wsClosed]);
    const next = await ua.fetch(s.url('wiki.test', '/'));
    assert.equal(next.status, 403);
    await s.updateApp('wiki', { assignments: [{ kind: 'group', id: 'staff' }] });
  });

  it('signs out: closes the session’s streams, clears the cookie, and the old cookie no longer works', async () => {
    const ua = new UserAgent();
    await signIn(ua, 'ada');
    const cookie = ua.cookies('wiki.test').map((c) => `${c.name}=${c.value}`).join('; ');
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`, { headers: { host: `wiki.test:${s.port}`, cookie } });
    await once(ws, 'message');
    const wsClosed = once(ws, 'close');
    const out = await ua.fetch(s.url('wiki.test', '/.well-known/drawbridge/signout'));
    assert.equal(out.status, 200);
    assert.match(out.body, /You have signed out of wiki/);
    await wsClosed;
    assert.equal(ua.cookies('wiki.test').some((c) => c.name === 'drawbridge_session'), false);
    const replay = await request(`http://127.0.0.1:${s.port}/`, { headers: { host: `wiki.test:${s.port}`, cookie }, dispatcher: client });
    await replay.body.dump();
    assert.equal(replay.statusCode, 302, 'a copied cookie of a signed-out session is refused');
    const [event] = (await audit('user.signout')).filter((e) => e.actor === users.ada!.id);
    assert.equal(event?.details.closedStreams, 1);
  });

  it('ends nothing on HEAD or on a sign-out that is not the user’s own click here: it asks, and the confirmation’s own post signs out', async () => {
    const ua = new UserAgent();
    assert.equal((await signIn(ua, 'eve')).status, 200);
    const session = (): string | undefined => ua.cookies('wiki.test').find((c) => c.name === 'drawbridge_session')?.value;
    const cookie = session()!;
    const signout = s.url('wiki.test', '/.well-known/drawbridge/signout');
    const fetchMetadata = (site: string, mode: string, dest: string): Record<string, string> => ({ 'sec-fetch-site': site, 'sec-fetch-mode': mode, 'sec-fetch-dest': dest });
    const asked = new Map([
      ['HEAD, a link scanner', await ua.fetch(signout, { method: 'HEAD' })],
      ['HEAD, same-origin', await ua.fetch(signout, { method: 'HEAD', headers: fetchMetadata('same-origin', 'navigate', 'document') })],
      ['GET, cross-site', await ua.fetch(signout, { headers: { 'sec-fetch-site': 'cross-site' } })],
      ['POST, cross-site', await ua.fetch(signout, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } })],
      // A cross-site post does not carry the SameSite=Lax cookie, but its answer could still delete it.
      ['POST, cross-site, without the cookie', await new UserAgent().fetch(signout, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } })],
      // Another app on a sibling host of the same domain (a passthrough app, user content): the same site, not the user's click here.
      ['GET, same-site link', await ua.fetch(signout, { headers: fetchMetadata('same-site', 'navigate', 'document') })],
      ['POST, same-site form', await ua.fetch(signout, { method: 'POST', headers: fetchMetadata('same-site', 'navigate', 'document') })],
      // Sub-resources of a page of this very app, e.g. <img src="/.well-known/drawbridge/signout"> in user content.
      ['GET, same-origin image', await ua.fetch(signout, { headers: fetchMetadata('same-origin', 'no-cors', 'image') })],
      ['GET, same-origin frame', await ua.fetch(signout, { headers: fetchMetadata('same-origin', 'navigate', 'iframe') })],
      ['GET, same-origin fetch', await ua.fetch(signout, { headers: fetchMetadata('same-origin', 'cors', 'empty') })],
      // <a ping="/.well-known/drawbridge/signout"> in user content: a no-cors POST on any click of the link.
      ['POST, same-origin ping', await ua.fetch(signout, { method: 'POST', headers: fetchMetadata('same-origin', 'no-cors', 'empty') })],
      // The browser fetches it before the user clicks, if they ever do.
      ['GET, same-origin prerender', await ua.fetch(signout, { headers: { ...fetchMetadata('same-origin', 'navigate', 'document'), 'sec-purpose': 'prefetch;prerender' } })],
    ]);
    for (const [label, page] of asked) {
      assert.equal(page.status, 200, label);
      assert.equal(header(page, 'set-cookie'), undefined, label);
      assert.equal(header(page, 'location'), undefined, label);
      assert.equal(header(page, 'x-drawbridge-error'), undefined, `${label}: a question, not an error`);
      assert.equal(header(page, 'cache-control'), 'no-store', label);
      assert.match(header(page, 'content-type')!, /^text\/html/, label);
      assert.equal(page.body === '', label.startsWith('HEAD'), label);
      if (!label.startsWith('HEAD')) assert.match(page.body, /<h1>Sign out of wiki\?<\/h1>/, label);
    }
    const page = asked.get('GET, cross-site')!;
    assert.match(page.body, /signed in as <strong>eve<\/strong>/);
    assert.doesNotMatch(page.body, /<script/i);
    assert.doesNotMatch(asked.get('POST, cross-site, without the cookie')!.body, /signed in as/, 'no cookie, no account to name');
    assert.equal(session(), cookie);
    assert.equal((await ua.fetch(s.url('wiki.test', '/'))).status, 200, 'still signed in');
    assert.deepEqual((await audit('user.signout')).filter((e) => e.actor === users.eve!.id), []);

    // The button posts from the relay's own page: same-origin, so it signs out.
    const action = unescapeHtml(/<form method="post" action="([^"]+)">/.exec(page.body)![1]!);
    assert.equal(action, '/.well-known/drawbridge/signout');
    const out = await ua.fetch(new URL(action, signout).href, { method: 'POST', headers: fetchMetadata('same-origin', 'navigate', 'document') });
    assert.equal(out.status, 200);
    assert.match(out.body, /You have signed out of wiki/);
    assert.equal(session(), undefined);
    const [event] = (await audit('user.signout')).filter((e) => e.actor === users.eve!.id);
    assert.equal(event?.details.provider, undefined, 'a local session has no provider step');

    // The user's own sign-out is one click: the app's "Sign out" link (same-origin navigation), a form or
    // script of the app itself (same-origin POST), a typed URL or bookmark (none), a browser without Fetch Metadata.
    const own: Array<[string, { method?: string; headers?: Record<string, string> }]> = [
      ['same-origin navigation', { headers: fetchMetadata('same-origin', 'navigate', 'document') }],
      ['same-origin POST', { method: 'POST', headers: fetchMetadata('same-origin', 'navigate', 'document') }],
      ['same-origin POST from a script', { method: 'POST', headers: fetchMetadata('same-origin', 'cors', 'empty') }],
      ['typed URL', { headers: { ...fetchMetadata('none', 'navigate', 'document'), 'sec-fetch-user': '?1' } }],
      ['no Fetch Metadata', {}],
    ];
    for (const [label, init] of own) {
      assert.equal((await signIn(ua, 'eve')).status, 200);
      const direct = await ua.fetch(signout, init);
      assert.equal(direct.status, 200, label);
      assert.match(direct.body, /You have signed out of wiki/, label);
      assert.match(header(direct, 'set-cookie') ?? '', /drawbridge_session=;/, label);
      assert.equal(session(), undefined, label);
      assert.ok((await audit('user.signout', header(direct, 'x-drawbridge-request-id'))).length === 1, `${label}: audited`);
    }
  });

  it('rate-limits sign-in per user, then per address, and forgets after the window', async () => {
    s.skew.ms += 61_000; // a fresh window: earlier tests failed from this address too
    const ua = new UserAgent();
    for (let i = 0; i < 3; i++) assert.equal((await signIn(ua, 'flo', '/', 'wrong')).status, 401);
    const limited = await signIn(ua, 'flo');
    assert.equal(limited.status, 429, 'even the right password waits once the user is limited');
    assert.equal(header(limited, 'x-drawbridge-error'), 'ERR_SIGNIN_RATE_LIMITED');
    assert.ok(Number(header(limited, 'retry-after')) > 0);
    // Three more failures from this address (six in all) lock the address for every name.
    for (const name of ['x1', 'x2', 'x3']) assert.equal((await signIn(ua, name, '/', 'wrong')).status, 401);
    assert.equal((await signIn(ua, 'ada')).status, 429);
    assert.ok((await audit('user.signin')).some((e) => e.outcome === 'rate_limited'));
    s.skew.ms += 61_000;
    assert.equal((await signIn(ua, 'flo')).status, 200);
  });
});
