/**
 * Pure checks of user access: return-to URLs (no open redirect), assignment
 * matching, and the relay's cookies never reaching an application.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppConfig } from '@drawbridge/shared';
import { appConfig } from '../../../test/helpers/apps.ts';
import { cookieName, cookieValue, serializeCookie } from '../src/auth/http.ts';
import { isAssigned, type UserIdentity } from '../src/auth/identity.ts';
import { safeReturnPath, safeReturnUrl } from '../src/auth/redirects.ts';
import { MemoryCatalog } from '../src/catalog.ts';
import { requestHeaders, stripRelayCookies } from '../src/proxy/headers.ts';

function app(over: Partial<AppConfig>): AppConfig {
  return appConfig({ id: 'app_1', name: 'hello', externalHost: 'hello.example.com', internalUrl: 'http://10.0.0.1/', group: 'g', preauth: 'oidc', ...over });
}

describe('return-to paths on the same host', () => {
  it('keeps paths and queries', () => {
    assert.equal(safeReturnPath('/a/b?c=d&e=%2F'), '/a/b?c=d&e=%2F');
    assert.equal(safeReturnPath('/'), '/');
  });

  it('refuses anything a browser could read as another host', () => {
    for (const bad of ['//evil.example', '/\\evil.example', '\\\\evil.example', 'http://evil.example/', 'https:evil.example', 'evil', '', '/\t/evil.example', '/a\r\nSet-Cookie: x=1', `/${'a'.repeat(5000)}`]) {
      assert.equal(safeReturnPath(bad), undefined, JSON.stringify(bad));
    }
    assert.equal(safeReturnPath(null), undefined);
  });
});

describe('return-to URLs from the central sign-in host', () => {
  const catalog = new MemoryCatalog([app({}), app({ id: 'app_2', name: 'open', externalHost: 'open.example.com', preauth: 'passthrough' })]);

  it('accepts a pre-authenticated app on the listener’s scheme and port', () => {
    const target = safeReturnUrl('https://hello.example.com/x?y=1', catalog, 'https', '');
    assert.equal(target?.app.id, 'app_1');
    assert.equal(target?.url.pathname, '/x');
    assert.equal(safeReturnUrl('http://HELLO.example.com:8080/', catalog, 'http', '8080')?.app.id, 'app_1');
  });

  it('refuses other hosts, passthrough apps, other schemes and ports, and credentials', () => {
    for (const bad of [
      'https://evil.example.com/',
      'https://open.example.com/',
      'http://hello.example.com/',
      'https://hello.example.com:8443/',
      'https://user@hello.example.com/',
      'https://hello.example.com.evil.example/',
      'https://evil.example/\\@hello.example.com/',
      '//hello.example.com/',
      'javascript:alert(1)',
      'https://hello.example.com/\n',
    ]) {
      assert.equal(safeReturnUrl(bad, catalog, 'https', ''), undefined, bad);
    }
  });
});

describe('assignment', () => {
  const user = (over: Partial<UserIdentity> = {}): UserIdentity => ({ method: 'oidc', sub: 'sub-1', email: 'Ada@Example.com', name: 'Ada', groups: ['staff'], ...over });

  it('matches the subject, the email case-insensitively, or a group', () => {
    assert.equal(isAssigned(app({ assignments: [{ kind: 'user', id: 'sub-1' }] }), user()), true);
    assert.equal(isAssigned(app({ assignments: [{ kind: 'user', id: 'ada@example.com' }] }), user()), true);
    assert.equal(isAssigned(app({ assignments: [{ kind: 'group', id: 'staff' }] }), user()), true);
    assert.equal(isAssigned(app({ assignments: [{ kind: 'group', id: '*' }] }), user({ groups: [] })), true);
  });

  it('denies by default and never matches a display name of a provider user', () => {
    assert.equal(isAssigned(app({ assignments: [] }), user()), false);
    assert.equal(isAssigned(app({ assignments: [{ kind: 'user', id: 'Ada' }] }), user()), false);
    assert.equal(isAssigned(app({ assignments: [{ kind: 'user', id: 'Ada' }] }), user({ method: 'local' })), true, 'local names are unique and admin-set');
    assert.equal(isAssigned(app({ assignments: [{ kind: 'group', id: 'Staff' }] }), user()), false);
  });
});

/** The whole-header parser the relay used before `cookieValue`: the reference the randomised test holds it to. */
function parseCookies(header: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

describe('relay cookies', () => {
  it('names cookies with the __Host- prefix over HTTPS and never sets a Domain', () => {
    assert.equal(cookieName('session', { secure: true }), '__Host-drawbridge_session');
    assert.equal(cookieName('csrf', { secure: true, path: '/.well-known/drawbridge/' }), '__Secure-drawbridge_csrf');
    const set = serializeCookie('session', 'v', { secure: true, maxAge: 60 });
    assert.equal(set, '__Host-drawbridge_session=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60');
    assert.doesNotMatch(serializeCookie('session', 'v', { secure: false }), /Secure|Domain/);
    assert.equal(cookieValue('a=1; drawbridge_session=x; b="2"', 'b'), '2');
  });

  it('reads one cookie exactly as parsing the whole header would', () => {
    // Random headers from pieces that matter: repeated names, spaces, quotes, empty parts, pairs without '=', '=' in values.
    const pieces = ['a', 'b', 'drawbridge_session', ' a', 'a ', '', '"', '=', 'x=y', ' ', '""', '"v"'];
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 5_000; i++) {
      const parts: string[] = [];
      for (let p = rand(6); p > 0; p--) {
        let part = '';
        for (let k = rand(5); k > 0; k--) part += pieces[rand(pieces.length)]!;
        parts.push(part);
      }
      const header = parts.join(rand(2) === 0 ? ';' : '; ');
      const all = parseCookies(header);
      for (const name of ['a', 'b', 'drawbridge_session', 'x', '"', '']) assert.equal(cookieValue(header, name), all.get(name), JSON.stringify({ header, name }));
    }
    assert.equal(cookieValue('a=1; drawbridge_session=x; a=2', 'a'), '1');
    assert.equal(cookieValue('a="', 'a'), '"');
    assert.equal(cookieValue('a=""; b', 'a'), '');
    assert.equal(cookieValue(' b ; a = "x=1" ;', 'a'), 'x=1');
    assert.equal(cookieValue(undefined, 'a'), undefined);
  });

  it('takes every relay cookie out of the Cookie header the app receives', () => {
    assert.equal(stripRelayCookies('theme=dark; __Host-drawbridge_session=abc; drawbridge_csrf=1; lang=en'), 'theme=dark; lang=en');
    assert.equal(stripRelayCookies('__Secure-drawbridge_oidc_x=1'), undefined);
    assert.equal(stripRelayCookies('mydrawbridge_x=1'), 'mydrawbridge_x=1');
    const headers = requestHeaders(['Cookie', 'drawbridge_session=a; theme=dark', 'Cookie', '__Host-drawbridge_session=b'], {
      clientAddress: '10.0.0.9',
      proto: 'https',
      host: 'hello.example.com',
      requestId: 'r',
      upgrade: false,
    });
    assert.deepEqual(
      headers.filter(([n]) => n === 'cookie'),
      [['cookie', 'theme=dark']],
    );
  });
});
