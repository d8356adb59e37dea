/**
 * The admin API against createAdminServer on a loopback port, with a real
 * SQLite store in a temp dir and a real TunnelRegistry. Asserts status codes
 * and error codes, never message text.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Session } from '@drawbridge/shared';
import { pino } from 'pino';
import {
  createAdminServer,
  type AdminContext,
  type AppView,
  type AuditEventView,
  type ConnectorDetail,
  type ConnectorView,
  type CreatedToken,
  type GroupView,
  type TokenView,
  type UserView,
} from '../src/admin/index.ts';
import { credentialMatches, ensureAdminCredential, readAdminCredential } from '../src/admin/credential.ts';
import { hashPassword, verifyPassword } from '../src/auth/local-users.ts';
import { loadRelayConfig } from '../src/server/config.ts';
import { hashToken, openStore, type ChangeEvent, type Store } from '../src/store/index.ts';
import { TunnelRegistry, type TunnelConnection } from '../src/tunnel/registry.ts';

const CA_PIN = `sha256:${'ab'.repeat(32)}`;
const RELAY_URL = 'https://relay.test:8443';
const T0 = 1_760_000_000_000;
const DAY = 86_400_000;

interface AuditPage {
  events: AuditEventView[];
  next: number;
}

interface ErrorBody {
  error: { code: string; message: string };
}

interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

let dir: string;
let store: Store;
let registry: TunnelRegistry;
let server: http.Server;
let base: string;
let adminToken: string;
let ready = true;
let clock = T0;
const events: ChangeEvent[] = [];

/** One request; `T` is the shape the test expects (a view type, or `ErrorBody`). */
async function api<T = ErrorBody>(method: string, path: string, body?: unknown, token: string | null = adminToken, raw?: string): Promise<Answer<T>> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  return { status: res.status, headers: res.headers, body: (type.startsWith('application/json') ? JSON.parse(text) : text) as T };
}

function expectError(answer: Answer<unknown>, status: number, code: string): void {
  const body = answer.body as ErrorBody;
  assert.equal(answer.status, status, JSON.stringify(body));
  assert.equal(body.error?.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.message, 'string');
}

async function auditOf(type: string) {
  return (await store.listAudit({ type, order: 'desc', limit: 10 }))[0];
}

function fakeConnection(connectorId: string, groupId: string, n: number): TunnelConnection {
  return {
    id: `conn-${connectorId}-${n}`,
    connectorId,
    connectorName: 'fake',
    groupId,
    serial: '1000',
    version: '0.1.0',
    remoteAddress: '192.0.2.7',
    connectedAt: clock,
    session: { acceptsStreams: true, openStreams: 0 } as unknown as Session,
    close: () => undefined,
  };
}

async function registerConnector(groupName: string, name: string) {
  const group = await store.ensureGroup(groupName);
  const secret = `secret-${name}-${Math.random()}`;
  await store.createToken({ tokenHash: hashToken(secret), groupId: group.id, expiresAt: clock + DAY, uses: 1 });
  let serial = 0x1000 + Math.floor(Math.random() * 1e6);
  const reg = await store.registerConnector({ tokenHash: hashToken(secret), now: clock, name, version: '0.1.0' }, () => ({
    serial: (serial++).toString(16),
    notBefore: clock,
    notAfter: clock + 365 * DAY,
  }));
  return { connector: reg.connector, group };
}

const minimalApp = (name: string, extra: Record<string, unknown> = {}) => ({ name, externalHost: `${name}.example.com`, internalUrl: 'http://10.0.0.5:8080/', ...extra });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'drawbridge-admin-'));
  store = await openStore(dir, { now: () => clock });
  store.subscribe((e) => events.push(e));
  registry = new TunnelRegistry({ maxLength: 10, maxWaitMs: 1000 });
  adminToken = await ensureAdminCredential(dir);
  const ctx: AdminContext = {
    store,
    config: loadRelayConfig({ env: {}, overrides: { dataDir: dir } }),
    caPin: CA_PIN,
    connectorUrl: RELAY_URL,
    registry,
    audit: async (e) => {
      await store.appendAudit(e);
    },
    now: () => clock,
    logger: pino({ level: 'silent' }),
    ready: async () => ready,
    metrics: () => 'drawbridge_up 1\n',
    adminToken,
    // The real hasher at a lower cost: the tests hash many passwords.
    hashPassword: (password) => hashPassword(password, { logN: 10 }),
  };
  server = createAdminServer(ctx);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('admin credential', () => {
  it('is created once, 0600, 32 random bytes in base64url, and read back', async () => {
    const d = mkdtempSync(join(tmpdir(), 'drawbridge-cred-'));
    try {
      const all = await Promise.all([1, 2, 3, 4, 5].map(() => ensureAdminCredential(d)));
      assert.equal(new Set(all).size, 1, 'racing starts agree on one token');
      assert.match(all[0]!, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(statSync(join(d, 'admin.token')).mode & 0o777, 0o600);
      assert.deepEqual(readdirSync(d), ['admin.token'], 'no temporary files left behind');
      assert.equal(await ensureAdminCredential(d), all[0]);
      assert.equal(await readAdminCredential(d), all[0]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('creates the data dir when missing', async () => {
    const d = join(mkdtempSync(join(tmpdir(), 'drawbridge-cred-')), 'nested', 'data');
    assert.match(await ensureAdminCredential(d), /^[A-Za-z0-9_-]{43}$/);
    rmSync(join(d, '..', '..'), { recursive: true, force: true });
  });

  it('refuses a missing or malformed file with its own code', async () => {
    const d = mkdtempSync(join(tmpdir(), 'drawbridge-cred-'));
    try {
      await assert.rejects(readAdminCredential(d), { code: 'ERR_ADMIN_CREDENTIAL_MISSING' });
      writeFileSync(join(d, 'admin.token'), 'not a token!\n', { mode: 0o600 });
      await assert.rejects(readAdminCredential(d), { code: 'ERR_ADMIN_CREDENTIAL_INVALID' });
      await assert.rejects(ensureAdminCredential(d), { code: 'ERR_ADMIN_CREDENTIAL_INVALID' });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('tightens a credential file that others may read', async () => {
    const d = mkdtempSync(join(tmpdir(), 'drawbridge-cred-'));
    try {
      writeFileSync(join(d, 'admin.token'), `${'x'.repeat(43)}\n`, { mode: 0o644 });
      assert.equal(await readAdminCredential(d), 'x'.repeat(43));
      assert.equal(statSync(join(d, 'admin.token')).mode & 0o777, 0o600);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('matches only the whole token', () => {
    const t = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
    assert.equal(credentialMatches(t, t), true);
    assert.equal(credentialMatches(t.slice(0, 42), t), false);
    assert.equal(credentialMatches(`${t}x`, t), false);
    assert.equal(credentialMatches('', t), false);
    assert.equal(credentialMatches('', ''), false, 'an empty credential never matches');
  });
});

describe('unauthenticated endpoints', () => {
  it('answers /healthz, /readyz and /metrics without a token', async () => {
    const health = await api<{ status: string }>('GET', '/healthz', undefined, null);
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    const readyz = await api('GET', '/readyz', undefined, null);
    assert.equal(readyz.status, 200);
    ready = false;
    try {
      assert.equal((await api('GET', '/readyz', undefined, null)).status, 503);
    } finally {
      ready = true;
    }
    const metrics = await api('GET', '/metrics', undefined, null);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    assert.equal(metrics.body, 'drawbridge_up 1\n');
  });

  it('refuses other methods on them', async () => {
    const answer = await api('POST', '/healthz', {}, null);
    expectError(answer, 405, 'ERR_METHOD_NOT_ALLOWED');
    assert.equal(answer.headers.get('allow'), 'GET, HEAD');
  });
});

describe('authentication', () => {
  it('requires the bearer token on every /v1 route', async () => {
    for (const [method, path] of [
      ['GET', '/v1/groups'],
      ['POST', '/v1/groups'],
      ['POST', '/v1/tokens'],
      ['GET', '/v1/apps'],
      ['DELETE', '/v1/apps/x'],
      ['POST', '/v1/connectors/con_x/revoke'],
      ['POST', '/v1/users'],
      ['GET', '/v1/audit'],
      ['GET', '/v1/nowhere'],
    ] as const) {
      const answer = await api(method, path, method === 'GET' || method === 'DELETE' ? undefined : { name: 'x' }, null);
      expectError(answer, 401, 'ERR_UNAUTHORIZED');
      assert.match(answer.headers.get('www-authenticate')!, /^Bearer /);
    }
  });

  it('refuses a wrong token, a prefix of the token, the token with more after it, and other schemes', async () => {
    for (const token of ['wrong', adminToken.slice(0, -1), adminToken.slice(0, 8), `${adminToken}A`, `${adminToken} extra`]) {
      expectError(await api('GET', '/v1/groups', undefined, token), 401, 'ERR_UNAUTHORIZED');
    }
    const basic = await fetch(`${base}/v1/groups`, { headers: { authorization: `Basic ${adminToken}` } });
    assert.equal(basic.status, 401);
    const bare = await fetch(`${base}/v1/groups`, { headers: { authorization: adminToken } });
    assert.equal(bare.status, 401);
    const lower = await fetch(`${base}/v1/groups`, { headers: { authorization: `bearer ${adminToken}` } });
    assert.equal(lower.status, 200, 'the scheme is case-insensitive');
  });

  it('records refusals in the audit trail', async () => {
    await api('GET', '/v1/apps', undefined, 'nope');
    const event = await auditOf('admin.denied');
    assert.equal(event?.outcome, 'denied');
    assert.equal(event?.details.path, '/v1/apps');
  });
});

describe('routing and bodies', () => {
  it('answers unknown routes 404 and wrong methods 405 with Allow', async () => {
    expectError(await api('GET', '/v1/nowhere'), 404, 'ERR_ROUTE_NOT_FOUND');
    expectError(await api('GET', '/v2/groups'), 404, 'ERR_ROUTE_NOT_FOUND');
    const answer = await api('PATCH', '/v1/groups');
    expectError(answer, 405, 'ERR_METHOD_NOT_ALLOWED');
    assert.equal(answer.headers.get('allow'), 'GET, POST');
  });

  it('refuses bodies that are not JSON objects, or too large', async () => {
    expectError(await api('POST', '/v1/groups', undefined, adminToken, '{"name":'), 400, 'ERR_BAD_JSON');
    expectError(await api('POST', '/v1/groups', ['a']), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/groups', 'a'), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/groups', { name: 'x'.repeat(70 * 1024) }), 413, 'ERR_BODY_TOO_LARGE');
  });

  it('answers JSON that is not cached', async () => {
    const answer = await api('GET', '/v1/groups');
    assert.match(answer.headers.get('content-type')!, /^application\/json/);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
  });
});

describe('groups', () => {
  it('adds, lists, shows and removes a group, each change audited', async () => {
    const created = await api<GroupView>('POST', '/v1/groups', { name: 'berlin' });
    assert.equal(created.status, 201);
    assert.match(created.body.id, /^grp_/);
    assert.equal(created.body.name, 'berlin');
    assert.deepEqual([created.body.apps, created.body.connectors, created.body.connections], [0, 0, 0]);
    assert.equal((await auditOf('group.created'))?.actor, 'admin');

    const list = await api<{ groups: GroupView[] }>('GET', '/v1/groups');
    assert.ok(list.body.groups.some((g) => g.id === created.body.id));
    assert.equal((await api<GroupView>('GET', '/v1/groups/berlin')).body.id, created.body.id);
    assert.equal((await api<GroupView>('GET', `/v1/groups/${created.body.id}`)).body.name, 'berlin');

    const removed = await api<GroupView>('DELETE', '/v1/groups/berlin');
    assert.equal(removed.status, 200);
    assert.equal(removed.body.id, created.body.id);
    assert.equal(await store.getGroupByName('berlin'), null);
    assert.equal((await auditOf('group.removed'))?.details.groupId, created.body.id);
  });

  it('refuses a taken, invalid or missing name and unknown fields', async () => {
    await api('POST', '/v1/groups', { name: 'paris' });
    expectError(await api('POST', '/v1/groups', { name: 'paris' }), 409, 'ERR_NAME_TAKEN');
    expectError(await api('POST', '/v1/groups', { name: 'no spaces' }), 400, 'ERR_INVALID_NAME');
    expectError(await api('POST', '/v1/groups', { name: '-dash' }), 400, 'ERR_INVALID_NAME');
    expectError(await api('POST', '/v1/groups', { name: 7 }), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/groups', {}), 400, 'ERR_MISSING_FIELD');
    expectError(await api('POST', '/v1/groups', { name: 'ok', color: 'red' }), 400, 'ERR_UNKNOWN_FIELD');
  });

  it('answers 404 for a group that does not exist', async () => {
    expectError(await api('GET', '/v1/groups/nowhere'), 404, 'ERR_NOT_FOUND');
    expectError(await api('DELETE', '/v1/groups/nowhere'), 404, 'ERR_NOT_FOUND');
  });

  it('refuses to remove a group that serves an app or has an active connector', async () => {
    await api('POST', '/v1/groups', { name: 'busy' });
    await api('POST', '/v1/apps', minimalApp('busyapp', { group: 'busy' }));
    expectError(await api('DELETE', '/v1/groups/busy'), 409, 'ERR_GROUP_IN_USE');
    await api('DELETE', '/v1/apps/busyapp');
    const { connector } = await registerConnector('busy', 'busy-1');
    expectError(await api('DELETE', '/v1/groups/busy'), 409, 'ERR_GROUP_IN_USE');
    await api('POST', `/v1/connectors/${connector.id}/revoke`);
    assert.equal((await api('DELETE', '/v1/groups/busy')).status, 200);
  });
});

describe('tokens', () => {
  it('creates a token for the default group that the store accepts by its hash only', async () => {
    const answer = await api<CreatedToken>('POST', '/v1/tokens', {});
    assert.equal(answer.status, 201);
    const { id, token, caPin, expiresAt, group, groupId, relayUrl } = answer.body;
    assert.match(id, /^tok_/);
    assert.match(token, /^dbt_[A-Za-z0-9_-]{43}$/);
    assert.equal(caPin, CA_PIN);
    assert.equal(relayUrl, RELAY_URL);
    assert.equal(group, 'default');
    assert.equal(groupId, (await store.getGroupByName('default'))!.id);
    assert.equal(Date.parse(expiresAt!), clock + 3_600_000);
    assert.equal(answer.body.usesLeft, 1);
    const event = await auditOf('token.created');
    assert.equal(event?.actor, 'admin');
    assert.ok(!JSON.stringify(event).includes(token), 'the secret is never audited');
    const consumed = await store.consumeToken(hashToken(token), clock);
    assert.equal(consumed.ok, true);
  });

  it('takes a group, a ttl and a number of uses', async () => {
    await api('POST', '/v1/groups', { name: 'tokgroup' });
    const answer = await api<CreatedToken>('POST', '/v1/tokens', { group: 'tokgroup', ttl: '2h', uses: 3 });
    assert.equal(answer.status, 201);
    assert.equal(answer.body.group, 'tokgroup');
    assert.equal(Date.parse(answer.body.expiresAt!), clock + 7_200_000);
    assert.equal(answer.body.usesLeft, 3);
    assert.equal((await api('POST', '/v1/tokens', { ttl: 90_000 })).status, 201, 'a number of milliseconds is a ttl too');
  });

  it('refuses an unknown group, a bad ttl or a bad number of uses', async () => {
    expectError(await api('POST', '/v1/tokens', { group: 'nosuchgroup' }), 400, 'ERR_UNKNOWN_GROUP');
    expectError(await api('POST', '/v1/tokens', { group: 'bad name' }), 400, 'ERR_INVALID_NAME');
    expectError(await api('POST', '/v1/tokens', { ttl: 'soon' }), 400, 'ERR_INVALID_DURATION');
    expectError(await api('POST', '/v1/tokens', { ttl: '1s' }), 400, 'ERR_INVALID_DURATION');
    expectError(await api('POST', '/v1/tokens', { ttl: '365d' }), 400, 'ERR_INVALID_DURATION');
    expectError(await api('POST', '/v1/tokens', { ttl: true }), 400, 'ERR_INVALID_DURATION');
    expectError(await api('POST', '/v1/tokens', { uses: 0 }), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/tokens', { uses: 1.5 }), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/tokens', { uses: '2' }), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/tokens', { secret: 'mine' }), 400, 'ERR_UNKNOWN_FIELD');
  });

  it('lists tokens with their state, without secrets, and revokes them', async () => {
    const created = await api<CreatedToken>('POST', '/v1/tokens', { ttl: '1m' });
    clock += 120_000;
    try {
      const list = await api<{ tokens: TokenView[] }>('GET', '/v1/tokens');
      const listed = list.body.tokens.find((t) => t.id === created.body.id);
      assert.equal(listed?.state, 'expired');
      assert.ok(!JSON.stringify(list.body).includes(created.body.token));
      const fresh = await api<CreatedToken>('POST', '/v1/tokens', {});
      assert.equal((await api<{ tokens: TokenView[] }>('GET', '/v1/tokens')).body.tokens.find((t) => t.id === fresh.body.id)?.state, 'active');
      const revoked = await api<TokenView>('DELETE', `/v1/tokens/${fresh.body.id}`);
      assert.equal(revoked.status, 200);
      assert.equal(revoked.body.id, fresh.body.id);
      assert.equal((await store.consumeToken(hashToken(fresh.body.token), clock)).ok, false);
      assert.equal((await auditOf('token.revoked'))?.details.tokenId, fresh.body.id);
      expectError(await api('DELETE', `/v1/tokens/${fresh.body.id}`), 404, 'ERR_NOT_FOUND');
    } finally {
      clock -= 120_000;
    }
  });
});

describe('apps', () => {
  it('adds an app with defaults from @drawbridge/shared, in the default group', async () => {
    const answer = await api<AppView>('POST', '/v1/apps', minimalApp('wiki'));
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const app = answer.body;
    assert.match(app.id, /^app_/);
    assert.equal(app.externalHost, 'wiki.example.com');
    assert.equal(app.group, (await store.getGroupByName('default'))!.id);
    assert.equal(app.groupName, 'default');
    assert.equal(app.preauth, 'local');
    assert.deepEqual(app.timeouts, { connectMs: 10_000, headMs: 85_000, idleMs: 0, totalMs: 0 });
    assert.deepEqual(app.limits, { maxRequestBodyBytes: 0 });
    assert.deepEqual([app.headers, app.assignments, app.hostHeader, app.insecureSkipVerify, app.denyRobots], [[], [], null, false, true]);
    const event = await auditOf('app.created');
    assert.equal(event?.actor, 'admin');
    assert.equal(event?.app, app.id);
    assert.ok(events.some((e) => e.type === 'apps-changed' && e.appId === app.id), 'the store tells the relay, which tells connectors');
  });

  it('adds an app with every field', async () => {
    await api('POST', '/v1/groups', { name: 'apps-grp' });
    const answer = await api<AppView>('POST', '/v1/apps', {
      name: 'grafana',
      externalHost: 'Grafana.Example.COM.',
      internalUrl: 'https://10.0.0.9:3000/base',
      group: 'apps-grp',
      preauth: 'oidc',
      hostHeader: 'grafana.internal:3000',
      headers: [
        { name: 'X-Remote-User', value: '{email}' },
        { name: 'X-Remote-Groups', value: '{groups}' },
        { name: 'X-Tenant', value: 'acme/{claim:https://example.com/tenant}/{sub}' },
      ],
      assignments: [
        { kind: 'group', id: 'ops' },
        { kind: 'user', id: 'usr_abc' },
        { kind: 'group', id: 'ops' },
      ],
      timeouts: { headMs: '2m', idleMs: '30s', totalMs: '15m' },
      limits: { maxRequestBodyBytes: '10MiB' },
      insecureSkipVerify: true,
      denyRobots: false,
      bearerAudience: 'api://grafana',
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const app = answer.body;
    assert.equal((await store.getApp(app.id))!.bearerAudience, 'api://grafana', 'stored, so bearer tokens can be accepted');
    const cleared = await api<AppView>('PATCH', `/v1/apps/${app.id}`, { bearerAudience: null });
    assert.equal(cleared.body.bearerAudience, null);
    await api('PATCH', `/v1/apps/${app.id}`, { bearerAudience: 'api://grafana' });
    const bad = await api('PATCH', `/v1/apps/${app.id}`, { bearerAudience: 'has space' });
    assert.equal(bad.body.error.code, 'ERR_INVALID_FIELD');
    assert.equal(app.externalHost, 'grafana.example.com');
    assert.equal(app.groupName, 'apps-grp');
    assert.equal(app.hostHeader, 'grafana.internal:3000');
    assert.equal(app.headers.length, 3);
    assert.deepEqual(app.assignments, [
      { kind: 'group', id: 'ops' },
      { kind: 'user', id: 'usr_abc' },
    ]);
    assert.deepEqual(app.timeouts, { connectMs: 10_000, headMs: 120_000, idleMs: 30_000, totalMs: 900_000 });
    assert.equal(app.limits.maxRequestBodyBytes, 10 * 2 ** 20);
    assert.equal(app.insecureSkipVerify, true);
    assert.equal(app.denyRobots, false);
    const { groupName: _, ...stored } = app;
    assert.deepEqual(await store.getApp(app.id), stored);
  });

  it('refuses missing fields, invalid URLs and invalid hosts', async () => {
    expectError(await api('POST', '/v1/apps', { name: 'a1', externalHost: 'a1.example.com' }), 400, 'ERR_MISSING_FIELD');
    expectError(await api('POST', '/v1/apps', { externalHost: 'a1.example.com', internalUrl: 'http://x/' }), 400, 'ERR_MISSING_FIELD');
    for (const internalUrl of ['not a url', '10.0.0.5:8080', 'ftp://files/', 'http://user:pw@10.0.0.5/', 'http://10.0.0.5/#frag', 'file:///etc/passwd']) {
      expectError(await api('POST', '/v1/apps', minimalApp('a1', { internalUrl })), 400, 'ERR_INVALID_URL');
    }
    for (const externalHost of ['https://a1.example.com', 'a1.example.com:8080', 'a1.example.com/path', 'a b.example.com', '-a.example.com', '', 'a..b']) {
      expectError(await api('POST', '/v1/apps', minimalApp('a1', { externalHost })), 400, 'ERR_INVALID_HOST');
    }
    expectError(await api('POST', '/v1/apps', minimalApp('a1', { hostHeader: 'http://x' })), 400, 'ERR_INVALID_HOST');
    expectError(await api('POST', '/v1/apps', minimalApp('a1', { hostHeader: 'x:99999' })), 400, 'ERR_INVALID_HOST');
    expectError(await api('POST', '/v1/apps', minimalApp('bad name')), 400, 'ERR_INVALID_NAME');
    expectError(await api('POST', '/v1/apps', minimalApp('a1', { preauth: 'kerberos' })), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/apps', minimalApp('a1', { denyRobots: 'yes' })), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/apps', minimalApp('a1', { extra: 1 })), 400, 'ERR_UNKNOWN_FIELD');
    assert.equal(await store.getAppByName('a1'), null, 'nothing was stored');
  });

  it('refuses an unknown group, a taken name and a taken host in any case', async () => {
    expectError(await api('POST', '/v1/apps', minimalApp('a2', { group: 'nosuchgroup' })), 400, 'ERR_UNKNOWN_GROUP');
    assert.equal((await api('POST', '/v1/apps', minimalApp('a2'))).status, 201);
    expectError(await api('POST', '/v1/apps', minimalApp('a2', { externalHost: 'other.example.com' })), 409, 'ERR_NAME_TAKEN');
    expectError(await api('POST', '/v1/apps', minimalApp('a3', { externalHost: 'A2.example.com' })), 409, 'ERR_HOST_TAKEN');
  });

  it('refuses header rules with unknown placeholders, reserved or invalid names, or line breaks', async () => {
    const rule = (name: string, value: string) => minimalApp('hdr', { headers: [{ name, value }] });
    for (const value of ['{mail}', '{claim:}', '{EMAIL}', '{ email }']) {
      expectError(await api('POST', '/v1/apps', rule('X-User', value)), 400, 'ERR_UNKNOWN_PLACEHOLDER');
    }
    for (const value of ['{email', 'email}', '{{email}}', 'a\r\nX-Admin: 1', 'a\nb', 'nul\u0000']) {
      expectError(await api('POST', '/v1/apps', rule('X-User', value)), 400, 'ERR_INVALID_HEADER_RULE');
    }
    for (const name of ['Connection', 'transfer-encoding', 'Upgrade', 'Host', 'Content-Length', 'Proxy-Authorization', 'X-Drawbridge-Assertion', 'x-drawbridge-user', 'X-Forwarded-For', 'Cookie', 'X User', 'X:User', '']) {
      expectError(await api('POST', '/v1/apps', rule(name, '{email}')), 400, 'ERR_INVALID_HEADER_RULE');
    }
    const twice = minimalApp('hdr', { headers: [{ name: 'X-User', value: '{email}' }, { name: 'x-user', value: '{sub}' }] });
    expectError(await api('POST', '/v1/apps', twice), 400, 'ERR_INVALID_HEADER_RULE');
    expectError(await api('POST', '/v1/apps', minimalApp('hdr', { headers: [{ name: 'X-User' }] })), 400, 'ERR_MISSING_FIELD');
    expectError(await api('POST', '/v1/apps', minimalApp('hdr', { headers: 'X-User={email}' })), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/apps', minimalApp('hdr', { headers: [{ name: 'X-User', value: '{email}', extra: 1 }] })), 400, 'ERR_UNKNOWN_FIELD');
    assert.equal((await api('POST', '/v1/apps', rule('X-User', 'literal text, no placeholders'))).status, 201);
  });

  it('refuses invalid assignments, timeouts and limits', async () => {
    for (const assignments of [[{ kind: 'role', id: 'x' }], [{ kind: 'user', id: '' }], [{ kind: 'user', id: 'has space' }], [{ kind: 'user', id: 7 }]]) {
      expectError(await api('POST', '/v1/apps', minimalApp('asg', { assignments })), 400, 'ERR_INVALID_ASSIGNMENT');
    }
    expectError(await api('POST', '/v1/apps', minimalApp('asg', { assignments: ['user:x'] })), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/apps', minimalApp('asg', { timeouts: { headMs: 'forever' } })), 400, 'ERR_INVALID_DURATION');
    expectError(await api('POST', '/v1/apps', minimalApp('asg', { timeouts: { headMs: '10ms' } })), 400, 'ERR_INVALID_DURATION');
    expectError(await api('POST', '/v1/apps', minimalApp('asg', { timeouts: { firstByteMs: '1s' } })), 400, 'ERR_UNKNOWN_FIELD');
    // The total timeout is none (0) or from a second to a week.
    for (const totalMs of ['500ms', 1, '8d', -1, 'soon']) {
      expectError(await api('POST', '/v1/apps', minimalApp('asg', { timeouts: { totalMs } })), 400, 'ERR_INVALID_DURATION');
    }
    expectError(await api('POST', '/v1/apps', minimalApp('asg', { limits: { maxRequestBodyBytes: 'lots' } })), 400, 'ERR_INVALID_SIZE');
    expectError(await api('POST', '/v1/apps', minimalApp('asg', { limits: { maxRequestBodyBytes: -1 } })), 400, 'ERR_INVALID_SIZE');
  });

  it('shows by name or id and lists', async () => {
    const created = (await api<AppView>('POST', '/v1/apps', minimalApp('show-me'))).body;
    assert.equal((await api<AppView>('GET', '/v1/apps/show-me')).body.id, created.id);
    assert.equal((await api<AppView>('GET', `/v1/apps/${created.id}`)).body.name, 'show-me');
    const list = await api<{ apps: AppView[] }>('GET', '/v1/apps');
    assert.ok(list.body.apps.some((a) => a.id === created.id && a.groupName === 'default'));
    expectError(await api('GET', '/v1/apps/nope'), 404, 'ERR_NOT_FOUND');
  });

  it('updates only what is sent, merging timeouts and re-checking uniqueness', async () => {
    await api('POST', '/v1/apps', minimalApp('upd', { timeouts: { connectMs: '5s' }, headers: [{ name: 'X-User', value: '{email}' }] }));
    await api('POST', '/v1/apps', minimalApp('upd-other'));
    await api('POST', '/v1/groups', { name: 'upd-grp' });
    events.length = 0;
    const answer = await api<AppView>('PATCH', '/v1/apps/upd', { timeouts: { headMs: '30s' }, group: 'upd-grp', externalHost: 'UPD.example.com', assignments: [{ kind: 'user', id: 'ada' }] });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body.timeouts, { connectMs: 5000, headMs: 30_000, idleMs: 0, totalMs: 0 });
    assert.equal(answer.body.groupName, 'upd-grp');
    assert.equal(answer.body.internalUrl, 'http://10.0.0.5:8080/');
    assert.deepEqual(answer.body.headers, [{ name: 'X-User', value: '{email}' }]);
    assert.deepEqual(answer.body.assignments, [{ kind: 'user', id: 'ada' }]);
    const event = await auditOf('app.updated');
    assert.deepEqual((event?.details.fields as string[]).sort(), ['assignments', 'externalHost', 'group', 'timeouts']);
    assert.ok(events.filter((e) => e.type === 'apps-changed').length >= 2, 'both the old and the new group hear of it');

    assert.equal((await api<AppView>('PATCH', '/v1/apps/upd', { hostHeader: null, headers: [] })).body.headers.length, 0);
    expectError(await api('PATCH', '/v1/apps/upd', { externalHost: 'upd-other.example.com' }), 409, 'ERR_HOST_TAKEN');
    expectError(await api('PATCH', '/v1/apps/upd', { name: 'upd-other' }), 409, 'ERR_NAME_TAKEN');
    expectError(await api('PATCH', '/v1/apps/upd', { group: 'nosuchgroup' }), 400, 'ERR_UNKNOWN_GROUP');
    expectError(await api('PATCH', '/v1/apps/upd', { headers: [{ name: 'X-A', value: '{nope}' }] }), 400, 'ERR_UNKNOWN_PLACEHOLDER');
    expectError(await api('PATCH', '/v1/apps/upd', {}), 400, 'ERR_MISSING_FIELD');
    expectError(await api('PATCH', '/v1/apps/nope', { denyRobots: true }), 404, 'ERR_NOT_FOUND');
    assert.equal((await api('PATCH', '/v1/apps/upd', { externalHost: 'upd.example.com', name: 'upd' })).status, 200, 'its own name and host are not taken');
  });

  it('removes an app', async () => {
    const created = (await api<AppView>('POST', '/v1/apps', minimalApp('gone'))).body;
    const removed = await api<AppView>('DELETE', '/v1/apps/gone');
    assert.equal(removed.status, 200);
    assert.equal(removed.body.id, created.id);
    assert.equal(await store.getApp(created.id), null);
    assert.equal((await auditOf('app.removed'))?.app, created.id);
    expectError(await api('DELETE', '/v1/apps/gone'), 404, 'ERR_NOT_FOUND');
  });
});

describe('connectors', () => {
  it('lists connectors with group, live connections, last seen and certificate expiry', async () => {
    const { connector, group } = await registerConnector('con-grp', 'web-1');
    await store.touchConnector(connector.id, { at: clock + 5, version: '0.2.0' });
    const conns = [fakeConnection(connector.id, group.id, 1), fakeConnection(connector.id, group.id, 2)];
    for (const c of conns) registry.add(c);
    try {
      const list = await api<{ connectors: ConnectorView[] }>('GET', '/v1/connectors');
      const row = list.body.connectors.find((c) => c.id === connector.id)!;
      assert.equal(row.name, 'web-1');
      assert.equal(row.group, 'con-grp');
      assert.equal(row.groupId, group.id);
      assert.equal(row.version, '0.2.0');
      assert.equal(row.connections, 2);
      assert.equal(row.status, 'connected');
      assert.equal(Date.parse(row.lastSeenAt!), clock + 5);
      assert.equal(Date.parse(row.certificateExpiresAt!), clock + 365 * DAY);
      assert.equal(row.revokedAt, null);

      const filtered = await api<{ connectors: ConnectorView[] }>('GET', '/v1/connectors?group=con-grp');
      assert.deepEqual(
        filtered.body.connectors.map((c) => c.id),
        [connector.id],
      );
      assert.deepEqual((await api<{ connectors: ConnectorView[] }>('GET', '/v1/connectors?group=nosuchgroup')).body.connectors, []);

      const shown = await api<ConnectorDetail>('GET', `/v1/connectors/${connector.id}`);
      assert.equal(shown.body.id, connector.id);
      assert.equal(shown.body.certificates.length, 1);
      assert.equal(shown.body.tunnels.length, 2);
      assert.equal(shown.body.tunnels[0]?.remoteAddress, '192.0.2.7');
    } finally {
      for (const c of conns) registry.remove(c);
    }
    assert.equal((await api<ConnectorView>('GET', `/v1/connectors/${connector.id}`)).body.status, 'disconnected');
  });

  it('revokes a connector and all its certificates, audited, and tells the relay', async () => {
    const { connector } = await registerConnector('rev-grp', 'web-2');
    events.length = 0;
    const answer = await api<ConnectorDetail>('POST', `/v1/connectors/${connector.id}/revoke`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'revoked');
    assert.equal(Date.parse(answer.body.revokedAt!), clock);
    assert.equal(answer.body.certificateExpiresAt, null);
    assert.ok(answer.body.certificates.every((c) => c.revokedAt !== null));
    assert.ok(events.some((e) => e.type === 'connector-revoked' && e.connectorId === connector.id));
    const event = await auditOf('connector.revoked');
    assert.equal(event?.connector, connector.id);
    assert.equal(event?.actor, 'admin');
    const again = await api<ConnectorDetail>('POST', `/v1/connectors/${connector.id}/revoke`);
    assert.equal(again.status, 200, 'revoking twice is harmless');
    assert.equal(again.body.revokedAt, answer.body.revokedAt);
  });

  it('answers 404 for an unknown connector', async () => {
    expectError(await api('GET', '/v1/connectors/con_nope'), 404, 'ERR_NOT_FOUND');
    expectError(await api('POST', '/v1/connectors/con_nope/revoke'), 404, 'ERR_NOT_FOUND');
    expectError(await api('DELETE', '/v1/connectors/con_nope'), 405, 'ERR_METHOD_NOT_ALLOWED');
  });
});

describe('users', () => {
  it('adds a user with a password hash that verifies, and never returns it', async () => {
    const answer = await api<UserView & { passwordHash?: string }>('POST', '/v1/users', { name: 'ada', password: 'correct horse', groups: ['staff', 'ops', 'staff'] });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.match(answer.body.id, /^usr_/);
    assert.deepEqual(answer.body.groups, ['staff', 'ops']);
    assert.equal(answer.body.disabled, false);
    assert.equal(answer.body.passwordHash, undefined);
    const stored = await store.getUserByName('ada');
    assert.equal(await verifyPassword('correct horse', stored!.passwordHash), true);
    const event = await auditOf('user.created');
    assert.equal(event?.actor, 'admin');
    assert.ok(!JSON.stringify(event).includes('correct horse'));
  });

  it('refuses a taken name, a short password, invalid names and groups', async () => {
    await api('POST', '/v1/users', { name: 'bob', password: 'long enough' });
    expectError(await api('POST', '/v1/users', { name: 'bob', password: 'long enough' }), 409, 'ERR_NAME_TAKEN');
    expectError(await api('POST', '/v1/users', { name: 'carl', password: 'short' }), 400, 'ERR_INVALID_PASSWORD');
    expectError(await api('POST', '/v1/users', { name: 'carl', password: 'x'.repeat(1025) }), 400, 'ERR_INVALID_PASSWORD');
    expectError(await api('POST', '/v1/users', { name: 'carl' }), 400, 'ERR_MISSING_FIELD');
    expectError(await api('POST', '/v1/users', { name: 'has space', password: 'long enough' }), 400, 'ERR_INVALID_NAME');
    expectError(await api('POST', '/v1/users', { name: 'carl', password: 'long enough', groups: ['a,b'] }), 400, 'ERR_INVALID_NAME');
    expectError(await api('POST', '/v1/users', { name: 'carl', password: 'long enough', groups: 'staff' }), 400, 'ERR_INVALID_FIELD');
    expectError(await api('POST', '/v1/users', { name: 'carl', password: 'long enough', passwordHash: 'x' }), 400, 'ERR_UNKNOWN_FIELD');
    assert.equal(await store.getUserByName('carl'), null);
  });

  it('lists, shows, updates and removes users', async () => {
    const created = (await api<UserView>('POST', '/v1/users', { name: 'dora@example.com', password: 'long enough' })).body;
    assert.ok((await api<{ users: UserView[] }>('GET', '/v1/users')).body.users.some((u) => u.id === created.id));
    assert.equal((await api<UserView>('GET', '/v1/users/dora@example.com')).body.id, created.id);
    const updated = await api<UserView>('PATCH', `/v1/users/${created.id}`, { disabled: true, password: 'another one', groups: ['x'] });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.disabled, true);
    assert.equal(await verifyPassword('another one', (await store.getUser(created.id))!.passwordHash), true);
    expectError(await api('PATCH', `/v1/users/${created.id}`, {}), 400, 'ERR_MISSING_FIELD');
    expectError(await api('PATCH', `/v1/users/${created.id}`, { name: 'rename' }), 400, 'ERR_UNKNOWN_FIELD');
    assert.equal((await api('DELETE', '/v1/users/dora@example.com')).status, 200);
    expectError(await api('GET', '/v1/users/dora@example.com'), 404, 'ERR_NOT_FOUND');
    assert.equal((await auditOf('user.removed'))?.details.userId, created.id);
  });
});

describe('audit', () => {
  it('lists events with filters and an after cursor', async () => {
    const first = await api<AuditPage>('GET', '/v1/audit?order=desc&limit=1');
    assert.equal(first.status, 200);
    const cursor = first.body.next;
    assert.equal(cursor, first.body.events[0]?.id);
    assert.equal(typeof first.body.events[0]?.at, 'string');

    await api('POST', '/v1/groups', { name: 'audited' });
    const newer = await api<AuditPage>('GET', `/v1/audit?after=${cursor}`);
    assert.deepEqual(
      newer.body.events.map((e) => e.type),
      ['group.created'],
    );
    assert.equal(newer.body.next, newer.body.events[0]?.id);
    const none = await api<AuditPage>('GET', `/v1/audit?after=${newer.body.next}`);
    assert.deepEqual(none.body.events, []);
    assert.equal(none.body.next, newer.body.next, 'the cursor stays put when nothing is new');

    const byType = await api<AuditPage>('GET', '/v1/audit?type=group.created&actor=admin&outcome=success');
    assert.ok(byType.body.events.length >= 2);
    assert.ok(byType.body.events.every((e) => e.type === 'group.created'));

    const app = (await api<AppView>('POST', '/v1/apps', minimalApp('audited-app'))).body;
    const byApp = await api<AuditPage>('GET', '/v1/audit?app=audited-app');
    assert.deepEqual(
      byApp.body.events.map((e) => e.app),
      [app.id],
    );
    const since = await api('GET', `/v1/audit?since=${new Date(clock).toISOString()}&until=${clock + 1}&limit=1000`);
    assert.equal(since.status, 200);
  });

  it('refuses invalid query parameters', async () => {
    for (const q of ['after=x', 'after=-1', 'limit=0', 'limit=1001', 'limit=abc', 'order=up', 'since=yesterday', 'type=', 'colour=red']) {
      expectError(await api('GET', `/v1/audit?${q}`), 400, 'ERR_INVALID_QUERY');
    }
  });
});

describe('failures of the relay', () => {
  it('answers 503 ERR_STORE_UNAVAILABLE when the store is gone, and 500 ERR_INTERNAL without details for the unexpected', async () => {
    const d = mkdtempSync(join(tmpdir(), 'drawbridge-admin-down-'));
    const closed = await openStore(d);
    await closed.close();
    const token = await ensureAdminCredential(d);
    const down = createAdminServer({
      store: closed,
      config: loadRelayConfig({ env: {}, overrides: { dataDir: d } }),
      caPin: CA_PIN,
      connectorUrl: RELAY_URL,
      registry,
      audit: async () => undefined,
      now: () => clock,
      logger: pino({ level: 'silent' }),
      ready: () => Promise.reject(new Error('store gone')),
      metrics: () => {
        throw new Error('secret detail');
      },
      adminToken: token,
    });
    down.listen(0, '127.0.0.1');
    await once(down, 'listening');
    const url = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
    try {
      const groups = await fetch(`${url}/v1/groups`, { headers: { authorization: `Bearer ${token}` } });
      expectError({ status: groups.status, headers: groups.headers, body: await groups.json() }, 503, 'ERR_STORE_UNAVAILABLE');
      assert.equal((await fetch(`${url}/readyz`)).status, 503);
      const metrics = await fetch(`${url}/metrics`);
      const body = await metrics.text();
      expectError({ status: metrics.status, headers: metrics.headers, body: JSON.parse(body) }, 500, 'ERR_INTERNAL');
      assert.ok(!body.includes('secret detail'));
    } finally {
      down.closeAllConnections();
      down.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
});
