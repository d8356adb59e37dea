/**
 * Header-based SSO rules: templates, missing values, UTF-8 on the wire, the
 * size bound that fails instead of truncating, rule validation, and the
 * connector's injector reading the identity and assertion from request meta.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AppConfig,
  decodeIdentityMeta,
  encodeIdentityMeta,
  type HeaderRule,
  renderHeaderRules,
  rulesNeed,
  SsoRuleError,
  validateHeaderRule,
} from '@drawbridge/shared';
import { appConfig } from '../../../test/helpers/apps.ts';
import { ssoHeaders } from '../src/sso.ts';

const code = (c: string) => (err: unknown) => err instanceof SsoRuleError && err.code === c;
const ada = { sub: 'usr_1', email: 'ada@example.com', name: 'Ada Lovelace', groups: ['staff', 'admins'], claims: { department: 'R&D', level: 3, roles: ['a', 'b'] } };

function app(headers: HeaderRule[]): AppConfig {
  return appConfig({ id: 'app_1', name: 'hello', externalHost: 'hello.example.com', internalUrl: 'http://10.0.0.1/', group: 'g', preauth: 'oidc', headers });
}

describe('SSO header rules', () => {
  it('fills every placeholder', () => {
    const rules = [
      { name: 'X-Remote-User', value: '{email}' },
      { name: 'X-Remote-Sub', value: '{sub}' },
      { name: 'X-Remote-Name', value: 'name={name}' },
      { name: 'X-Remote-Groups', value: '{groups}' },
      { name: 'X-Dept', value: '{claim:department}/{claim:level}/{claim:roles}' },
    ];
    assert.deepEqual(renderHeaderRules(rules, ada), [
      ['X-Remote-User', 'ada@example.com'],
      ['X-Remote-Sub', 'usr_1'],
      ['X-Remote-Name', 'name=Ada Lovelace'],
      ['X-Remote-Groups', 'staff,admins'],
      ['X-Dept', 'R&D/3/a,b'],
    ]);
  });

  it('leaves out a header whose value is missing, never sending it empty', () => {
    assert.deepEqual(renderHeaderRules([{ name: 'X-Remote-User', value: '{email}' }, { name: 'X-Team', value: '{claim:team}' }], { sub: 'u' }), []);
  });

  it('sends non-ASCII values as UTF-8 bytes', () => {
    const [[, value]] = renderHeaderRules([{ name: 'X-Remote-Name', value: '{name}' }], { sub: 'u', name: 'Łukasz Żółć' }) as [[string, string]];
    assert.equal(Buffer.from(value, 'latin1').toString('utf8'), 'Łukasz Żółć');
  });

  it('fails a value over the limit instead of truncating it, and a value with a control character', () => {
    const rule = [{ name: 'X-Remote-Groups', value: '{groups}' }];
    const many = { sub: 'u', groups: Array.from({ length: 1000 }, (_, i) => `group-${i}`) };
    assert.throws(() => renderHeaderRules(rule, many, 4096), code('ERR_SSO_HEADER_TOO_LARGE'));
    assert.throws(() => renderHeaderRules([{ name: 'X-Remote-Name', value: '{name}' }], { sub: 'u', name: 'a\r\nX-Admin: 1' }), code('ERR_SSO_HEADER_INVALID'));
    try {
      renderHeaderRules(rule, many, 4096);
    } catch (err) {
      assert.equal((err as SsoRuleError).header, 'X-Remote-Groups');
    }
  });

  it('validates rules where they enter the system', () => {
    validateHeaderRule({ name: 'X-Remote-User', value: 'user {email} ({claim:oid})' });
    assert.throws(() => validateHeaderRule({ name: 'X-Remote-User', value: '{mail}' }), code('ERR_SSO_RULE_INVALID'));
    assert.throws(() => validateHeaderRule({ name: 'X-Remote-User', value: '{email' }), code('ERR_SSO_RULE_INVALID'));
    assert.throws(() => validateHeaderRule({ name: 'Bad Name', value: '{email}' }), code('ERR_SSO_RULE_INVALID'));
    assert.throws(() => validateHeaderRule({ name: 'X-Drawbridge-User', value: '{email}' }), code('ERR_SSO_RULE_INVALID'));
    assert.throws(() => validateHeaderRule({ name: 'Host', value: '{email}' }), code('ERR_SSO_RULE_INVALID'));
  });

  it('says which parts of the identity the rules read', () => {
    const need = rulesNeed([{ name: 'A', value: '{groups}' }, { name: 'B', value: '{claim:oid}' }]);
    assert.equal(need.groups, true);
    assert.deepEqual([...need.claims], ['oid']);
  });

  it('carries the identity through meta as ASCII JSON', () => {
    const encoded = encodeIdentityMeta({ ...ada, name: 'Zoë 😀' });
    assert.match(encoded, /^[\x20-\x7e]+$/);
    assert.deepEqual(decodeIdentityMeta(encoded), { ...ada, name: 'Zoë 😀' });
    assert.equal(decodeIdentityMeta('{"email":"x"}'), undefined, 'no subject, no identity');
    assert.equal(decodeIdentityMeta('not json'), undefined);
  });
});

describe('connector SSO injector', () => {
  it('builds the rule headers and the assertion header from request meta', () => {
    const meta: Array<[string, string]> = [
      ['proto', 'https'],
      ['identity', encodeIdentityMeta(ada)],
      ['assertion', 'eyJ.x.y'],
    ];
    assert.deepEqual(ssoHeaders(app([{ name: 'X-Remote-User', value: '{email}' }]), meta), [
      ['X-Remote-User', 'ada@example.com'],
      ['x-drawbridge-assertion', 'eyJ.x.y'],
    ]);
  });

  it('renders once per app and identity, and every request still gets its own list', () => {
    const rules = app([{ name: 'X-Remote-User', value: '{email}' }]);
    const meta = (assertion: string): Array<[string, string]> => [
      ['identity', encodeIdentityMeta(ada)],
      ['assertion', assertion],
    ];
    const bare: Array<[string, string]> = [['identity', encodeIdentityMeta(ada)]];
    ssoHeaders(rules, bare).push(['x-tampered', '1']);
    assert.deepEqual(ssoHeaders(rules, bare), [['X-Remote-User', 'ada@example.com']]);
    assert.deepEqual(ssoHeaders(rules, meta('eyJ.2')), [
      ['X-Remote-User', 'ada@example.com'],
      ['x-drawbridge-assertion', 'eyJ.2'],
    ], 'a caller changing its list changes nothing for the next request; the assertion is per request');
    // A changed app is a new configuration object: its rules apply at once.
    assert.deepEqual(ssoHeaders(app([{ name: 'X-Remote-Name', value: '{name}' }]), meta('eyJ.3')), [
      ['X-Remote-Name', 'Ada Lovelace'],
      ['x-drawbridge-assertion', 'eyJ.3'],
    ]);
    // Another user of the same app gets their own headers.
    const bob: Array<[string, string]> = [['identity', encodeIdentityMeta({ sub: 'usr_2', email: 'bob@example.com' })]];
    assert.deepEqual(ssoHeaders(rules, bob), [['X-Remote-User', 'bob@example.com']]);
    // A rule that cannot be filled fails on every request, not only the first.
    const tiny = app([{ name: 'X-Remote-User', value: '{email}' }]);
    for (let i = 0; i < 2; i++) assert.throws(() => ssoHeaders(tiny, meta('eyJ.4'), 4), code('ERR_SSO_HEADER_TOO_LARGE'));
  });

  it('injects nothing for a request without identity (passthrough)', () => {
    assert.deepEqual(ssoHeaders(app([{ name: 'X-Remote-User', value: '{email}' }]), [['proto', 'https']]), []);
  });
});
