import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renderConfigDoc } from '../src/server/config-doc.ts';
import { loadRelayConfig } from '../src/server/config.ts';

function file(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'drawbridge-config-')), name);
  writeFileSync(path, text);
  return path;
}

describe('relay configuration', () => {
  it('has defaults that match the interface contract', () => {
    const c = loadRelayConfig({ env: {} });
    assert.deepEqual(c.public.listen, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(c.connector.listen, { host: '0.0.0.0', port: 8443 });
    assert.deepEqual(c.admin.listen, { host: '127.0.0.1', port: 8081 });
    assert.equal(c.connector.rotationAge, 180 * 86_400_000);
    assert.equal(c.queue.maxWait, 10_000);
    assert.equal(c.connector.connections, 2);
  });

  it('layers file, environment and flags, in that order', () => {
    const yaml = file('relay.yaml', 'queue:\n  maxWait: 5s\n  maxLength: 7\npublic:\n  listen: "[::1]:9000"\n');
    const c = loadRelayConfig({ file: yaml, env: { DRAWBRIDGE_QUEUE_MAX_WAIT: '2s', DRAWBRIDGE_CONNECTOR_HOSTS: 'relay.example.com, 10.0.0.1' }, overrides: { dataDir: '/tmp/x' } });
    assert.equal(c.queue.maxWait, 2000);
    assert.equal(c.queue.maxLength, 7);
    assert.deepEqual(c.public.listen, { host: '::1', port: 9000 });
    assert.deepEqual(c.connector.hosts, ['relay.example.com', '10.0.0.1']);
    assert.equal(c.dataDir, '/tmp/x');
    const json = file('relay.json', JSON.stringify({ tunnel: { streamWindow: '1MiB' } }));
    assert.equal(loadRelayConfig({ file: json, env: {} }).tunnel.streamWindow, 1024 * 1024);
  });

  it('signs out at the OIDC provider unless oidc.providerLogout turns it off (file or DRAWBRIDGE_OIDC_PROVIDER_LOGOUT)', () => {
    assert.equal(loadRelayConfig({ env: {} }).oidc.providerLogout, true);
    assert.equal(loadRelayConfig({ env: { DRAWBRIDGE_OIDC_PROVIDER_LOGOUT: 'false' } }).oidc.providerLogout, false);
    const yaml = file('relay.yaml', 'oidc:\n  providerLogout: false\n');
    assert.equal(loadRelayConfig({ file: yaml, env: {} }).oidc.providerLogout, false);
    assert.equal(loadRelayConfig({ file: yaml, env: { DRAWBRIDGE_OIDC_PROVIDER_LOGOUT: 'true' } }).oidc.providerLogout, true);
    assert.throws(() => loadRelayConfig({ env: { DRAWBRIDGE_OIDC_PROVIDER_LOGOUT: 'sometimes' } }), (err: { code?: string; message?: string }) => err.code === 'ERR_CONFIG' && /oidc\.providerLogout .*DRAWBRIDGE_OIDC_PROVIDER_LOGOUT.*true or false/.test(err.message ?? ''));
  });

  it('names the key, the source and the problem', () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [() => loadRelayConfig({ env: { DRAWBRIDGE_QUEUE_MAX_WAIT: 'soon' } }), /queue\.maxWait .*DRAWBRIDGE_QUEUE_MAX_WAIT/],
      [() => loadRelayConfig({ env: { DRAWBRIDGE_PUBLIC_LISTEN: '8080' } }), /public\.listen/],
      [() => loadRelayConfig({ env: { DRAWBRIDGE_QUEUE_MAX_WIAT: '1s' } }), /unknown environment variable DRAWBRIDGE_QUEUE_MAX_WIAT/],
      [() => loadRelayConfig({ file: file('x.yaml', 'queue:\n  maxWiat: 1s\n'), env: {} }), /unknown setting queue\.maxWiat/],
      [() => loadRelayConfig({ file: file('x.yaml', 'public: [\n'), env: {} }), /not valid YAML/],
      [() => loadRelayConfig({ env: { DRAWBRIDGE_PUBLIC_TLS_CERT_FILE: '/a' } }), /go together/],
      [() => loadRelayConfig({ env: { DRAWBRIDGE_DATABASE: 'mysql://x' } }), /postgres/],
      [() => loadRelayConfig({ env: { DRAWBRIDGE_TUNNEL_MAX_STREAMS: '0' } }), /at least 1/],
      [() => loadRelayConfig({ env: { DRAWBRIDGE_CONNECTOR_ROTATION_AGE: '400d' } }), /rotate/],
    ];
    for (const [load, message] of cases) {
      assert.throws(load, (err: { code?: string; message?: string }) => err.code === 'ERR_CONFIG' && message.test(err.message ?? ''));
    }
  });

  it('docs/configuration.md is generated from the settings table (run `pnpm docs:config`)', () => {
    assert.equal(readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8'), renderConfigDoc());
  });
});
