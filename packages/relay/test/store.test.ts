/**
 * One conformance suite for the Store, run against SQLite (a temp dir) and
 * PostgreSQL (a fresh schema per test, dropped afterwards, so concurrent runs
 * never collide). Set DRAWBRIDGE_TEST_DATABASE_URL to use another server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { DEFAULT_APP_LIMITS, DEFAULT_APP_TIMEOUTS } from '@drawbridge/shared';
import {
  hashToken,
  openStore,
  SQLITE_FILE,
  type ChangeEvent,
  type Connector,
  type NewApp,
  type OpenStoreOptions,
  type Store,
} from '../src/store/index.ts';

interface Storage {
  /** A new store instance on this storage. */
  open(options?: OpenStoreOptions): Promise<Store>;
  /** Versions recorded in schema_migrations. */
  migrations(): Promise<number[]>;
  destroy(): Promise<void>;
}

interface Backend {
  name: string;
  create(): Promise<Storage>;
  /** Two instances on one storage hear each other's changes and may run transactions at once. */
  shared: boolean;
}

const HOUR = 3_600_000;
const T0 = 1_760_000_000_000;

// --- backends -------------------------------------------------------------

const sqlite: Backend = {
  name: 'sqlite',
  shared: false,
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'drawbridge-store-'));
    return {
      open: (options) => openStore(dir, options),
      async migrations() {
        const db = new DatabaseSync(join(dir, SQLITE_FILE), { readOnly: true });
        try {
          return db.prepare('SELECT version FROM schema_migrations ORDER BY version').all().map((r) => Number(r.version));
        } finally {
          db.close();
        }
      },
      async destroy() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const PG_URL = process.env.DRAWBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
const pgReason = await admin.query('SELECT 1').then(
  () => null,
  (err: unknown) => `PostgreSQL not reachable at ${PG_URL}: ${(err as Error).message}`,
);
// Developers without PostgreSQL skip its suite; CI has one and must never skip it.
if (pgReason && process.env.CI) throw new Error(`${pgReason} (CI must run the PostgreSQL suite)`);
const schemas = new Set<string>();
after(async () => {
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

const schemaOf = new WeakMap<Storage, string>();
function storageSchema(storage: Storage): string {
  const schema = schemaOf.get(storage);
  if (!schema) throw new Error('not a PostgreSQL storage');
  return schema;
}

const postgres: Backend = {
  name: 'postgres',
  shared: true,
  async create() {
    const schema = `store_test_${process.pid}_${randomBytes(6).toString('hex')}`;
    schemas.add(schema);
    const storage: Storage = {
      open: (options) => openStore(PG_URL, { ...options, schema }),
      async migrations() {
        const { rows } = await admin.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
        return rows.map((r) => r.version);
      },
      async destroy() {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        schemas.delete(schema);
      },
    };
    schemaOf.set(storage, schema);
    return storage;
  },
};

// --- helpers --------------------------------------------------------------

function app(group: string, overrides: Partial<NewApp> = {}): NewApp {
  return {
    name: 'hello',
    externalHost: 'hello.example.com',
    internalUrl: 'http://10.0.0.5:8080/base',
    group,
    preauth: 'oidc',
    hostHeader: null,
    headers: [{ name: 'X-Remote-User', value: '{email}' }],
    assignments: [
      { kind: 'group', id: 'staff' },
      { kind: 'user', id: 'usr_abc' },
    ],
    timeouts: { ...DEFAULT_APP_TIMEOUTS },
    limits: { ...DEFAULT_APP_LIMITS },
    insecureSkipVerify: false,
    denyRobots: true,
    bearerAudience: null,
    ...overrides,
  };
}

let serials = 0x1000;
/** An issuer as the relay's CA would be: reports a fresh serial and validity. */
function issuer(calls: Connector[] = []) {
  return (connector: Connector) => {
    calls.push(connector);
    serials += 1;
    return { serial: serials.toString(16), notBefore: T0, notAfter: T0 + 180 * 24 * HOUR, pem: `CERT for ${connector.id}` };
  };
}

/** Resolves with the first matching event; the timeout only fails a broken test, nothing waits on it. */
function nextEvent(store: Store, match: (e: ChangeEvent) => boolean, timeoutMs = 10_000): Promise<ChangeEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error('no matching change event arrived'));
    }, timeoutMs);
    const stop = store.subscribe((event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      stop();
      resolve(event);
    });
  });
}

function record(store: Store): { events: ChangeEvent[]; stop: () => void } {
  const events: ChangeEvent[] = [];
  return { events, stop: store.subscribe((e) => events.push(e)) };
}

function code(expected: string) {
  return (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, expected, `expected ${expected}, got ${String(err)}`);
    return true;
  };
}

/** Everything a store holds, for before/after comparisons. */
async function snapshot(store: Store) {
  const connectors = await store.listConnectors();
  return {
    ca: await store.getCa(),
    groups: await store.listGroups(),
    tokens: await store.listTokens(),
    connectors,
    certificates: await Promise.all(connectors.map((c) => store.listCertificates(c.id))),
    apps: await store.listApps(),
    users: await store.listUsers(),
    audit: await store.listAudit({ limit: 1000 }),
    setting: await store.getSetting('session.key'),
  };
}

// --- the suite ------------------------------------------------------------

function conformance(backend: Backend, skip: string | false) {
  describe(`Store on ${backend.name}`, { skip, timeout: 60_000 }, () => {
    let storage: Storage;
    let store: Store;
    const opened: Store[] = [];
    const open = async (options?: OpenStoreOptions) => {
      const s = await storage.open(options);
      opened.push(s);
      return s;
    };

    beforeEach(async () => {
      storage = await backend.create();
      store = await open();
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
      await storage.destroy();
    });

    /** A second instance: another relay on PostgreSQL; on SQLite the same process's store. */
    const peer = async () => (backend.shared ? open() : store);

    describe('schema and lifecycle', () => {
      it('reports its kind and answers ping', async () => {
        assert.equal(store.kind, backend.name);
        await store.ping();
      });

      it('migrates once, however often and however concurrently it is opened', async () => {
        const all = (await storage.migrations()).length;
        assert.ok(all >= 1);
        await open();
        await Promise.all([open(), open()]);
        assert.deepEqual(await storage.migrations(), Array.from({ length: all }, (_, i) => i + 1));
      });

      it('migrates a fresh database once when two relays start at the same moment', async () => {
        const fresh = await backend.create();
        try {
          const stores = await Promise.all([fresh.open(), fresh.open(), fresh.open()]);
          assert.equal((await fresh.migrations()).length, (await storage.migrations()).length);
          await stores[0].createGroup('default');
          assert.equal((await stores[2].listGroups()).length, 1);
          for (const s of stores) await s.close();
        } finally {
          await fresh.destroy();
        }
      });

      it('refuses calls after close with ERR_STORE_UNAVAILABLE', async () => {
        const s = await open();
        await s.close();
        await s.close();
        await assert.rejects(s.ping(), code('ERR_STORE_UNAVAILABLE'));
        await assert.rejects(s.listApps(), code('ERR_STORE_UNAVAILABLE'));
      });

      it('keeps everything across close and reopen', async () => {
        await store.saveCa({ keyPem: 'KEY', certPem: 'CERT' });
        const group = await store.createGroup('default');
        await store.createToken({ tokenHash: hashToken('t1'), groupId: group.id, expiresAt: T0 + HOUR, uses: 3 });
        const { connector } = await store.registerConnector({ tokenHash: hashToken('t1'), now: T0, name: 'c1', version: '1' }, issuer());
        await store.touchConnector(connector.id, { at: T0 + 5, version: '2' });
        await store.createApp(app(group.id));
        await store.createUser({ name: 'ann', passwordHash: 'scrypt$x', groups: ['staff'] });
        await store.appendAudit({ type: 'app.created', outcome: 'success', details: { nested: { a: [1, 2] } } });
        await store.setSetting('session.key', 'k1');
        const before = await snapshot(store);
        await store.close();
        opened.splice(opened.indexOf(store), 1);
        store = await open();
        assert.deepEqual(await snapshot(store), before);
      });
    });

    describe('certificate authority', () => {
      it('stores the first CA and returns it to every later saveCa', async () => {
        assert.equal(await store.getCa(), null);
        const first = await store.saveCa({ keyPem: 'KEY-A', certPem: 'CERT-A' });
        assert.equal(first.keyPem, 'KEY-A');
        assert.equal(first.certPem, 'CERT-A');
        assert.equal(typeof first.createdAt, 'number');
        assert.deepEqual(await store.saveCa({ keyPem: 'KEY-B', certPem: 'CERT-B' }), first);
        assert.deepEqual(await store.getCa(), first);
      });

      it('gives two relays racing on first start the same CA', async () => {
        const other = await peer();
        const [a, b] = await Promise.all([
          store.saveCa({ keyPem: 'KEY-A', certPem: 'CERT-A' }),
          other.saveCa({ keyPem: 'KEY-B', certPem: 'CERT-B' }),
        ]);
        assert.deepEqual(a, b);
      });
    });

    describe('connector groups', () => {
      it('creates, finds and lists groups', async () => {
        const g = await store.createGroup('default');
        assert.match(g.id, /^grp_[a-z2-7]{16}$/);
        assert.equal(g.name, 'default');
        assert.deepEqual(await store.getGroup(g.id), g);
        assert.deepEqual(await store.getGroupByName('default'), g);
        assert.equal(await store.getGroup('grp_missing'), null);
        assert.equal(await store.getGroupByName('missing'), null);
        const h = await store.createGroup('branch');
        assert.deepEqual(await store.listGroups(), [h, g]);
      });

      it('refuses a duplicate or empty name and stores nothing', async () => {
        await store.createGroup('default');
        await assert.rejects(store.createGroup('default'), code('ERR_STORE_CONFLICT'));
        await assert.rejects(store.createGroup('  '), code('ERR_STORE_INVALID'));
        assert.equal((await store.listGroups()).length, 1);
      });

      it('ensureGroup returns the existing group, also under a race', async () => {
        const other = await peer();
        const [a, b] = await Promise.all([store.ensureGroup('default'), other.ensureGroup('default')]);
        assert.deepEqual(a, b);
        assert.deepEqual(await store.ensureGroup('default'), a);
        assert.equal((await store.listGroups()).length, 1);
      });

      it('refuses to remove a group that still serves apps or has active connectors', async () => {
        const g = await store.createGroup('default');
        const a = await store.createApp(app(g.id));
        await assert.rejects(store.deleteGroup(g.id), code('ERR_STORE_CONFLICT'));
        await store.deleteApp(a.id);
        await store.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
        const { connector } = await store.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'c', version: '1' }, issuer());
        await assert.rejects(store.deleteGroup(g.id), code('ERR_STORE_CONFLICT'));
        assert.ok(await store.getGroup(g.id));
        await store.revokeConnector(connector.id, T0 + 1);
        await store.deleteGroup(g.id);
        assert.equal(await store.getGroup(g.id), null);
        assert.equal(await store.getConnector(connector.id), null, 'revoked connectors go with their group');
        await assert.rejects(store.deleteGroup(g.id), code('ERR_STORE_NOT_FOUND'));
      });
    });

    describe('registration tokens', () => {
      it('keeps only the hash and refuses anything that is not one', async () => {
        const g = await store.createGroup('default');
        await assert.rejects(
          store.createToken({ tokenHash: 'the-secret-itself', groupId: g.id, expiresAt: T0, uses: 1 }),
          code('ERR_STORE_INVALID'),
        );
        await assert.rejects(store.consumeToken('the-secret-itself', T0), code('ERR_STORE_INVALID'));
        await assert.rejects(
          store.createToken({ tokenHash: hashToken('x'), groupId: g.id, expiresAt: T0, uses: 0 }),
          code('ERR_STORE_INVALID'),
        );
        await assert.rejects(
          store.createToken({ tokenHash: hashToken('x'), groupId: 'grp_missing', expiresAt: T0, uses: 1 }),
          code('ERR_STORE_NOT_FOUND'),
        );
        assert.deepEqual(await store.listTokens(), []);
      });

      it('creates, gets, lists and deletes tokens', async () => {
        const g = await store.createGroup('default');
        const t = await store.createToken({ tokenHash: hashToken('a'), groupId: g.id, expiresAt: T0 + HOUR, uses: 2 });
        assert.match(t.id, /^tok_/);
        assert.deepEqual({ ...t, createdAt: 0 }, { id: t.id, groupId: g.id, expiresAt: T0 + HOUR, usesLeft: 2, createdAt: 0 });
        assert.equal('tokenHash' in t, false);
        assert.deepEqual(await store.getToken(t.id), t);
        assert.deepEqual(await store.listTokens(), [t]);
        await store.deleteToken(t.id);
        assert.equal(await store.getToken(t.id), null);
        await assert.rejects(store.deleteToken(t.id), code('ERR_STORE_NOT_FOUND'));
        assert.deepEqual(await store.consumeToken(hashToken('a'), T0), { ok: false, reason: 'unknown' });
      });

      it('consumes uses until none are left', async () => {
        const g = await store.createGroup('default');
        const t = await store.createToken({ tokenHash: hashToken('a'), groupId: g.id, expiresAt: T0 + HOUR, uses: 2 });
        const first = await store.consumeToken(hashToken('a'), T0);
        assert.deepEqual(first, { ok: true, token: { ...t, usesLeft: 1 } });
        const second = await store.consumeToken(hashToken('a'), T0);
        assert.equal(second.ok && second.token.usesLeft, 0);
        assert.deepEqual(await store.consumeToken(hashToken('a'), T0), { ok: false, reason: 'used-up' });
        assert.equal((await store.getToken(t.id))?.usesLeft, 0);
      });

      it('refuses unknown, expired and orphaned tokens without using them', async () => {
        const g = await store.createGroup('default');
        const t = await store.createToken({ tokenHash: hashToken('a'), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
        assert.deepEqual(await store.consumeToken(hashToken('b'), T0), { ok: false, reason: 'unknown' });
        assert.deepEqual(await store.consumeToken(hashToken('a'), T0 + HOUR), { ok: false, reason: 'expired' });
        assert.equal((await store.getToken(t.id))?.usesLeft, 1);
        await store.deleteGroup(g.id);
        assert.equal((await store.getToken(t.id))?.groupId, null);
        assert.deepEqual(await store.consumeToken(hashToken('a'), T0), { ok: false, reason: 'group-deleted' });
        assert.equal((await store.getToken(t.id))?.usesLeft, 1);
      });

      it('lets exactly one of two relays take the last use', async () => {
        const other = await peer();
        const g = await store.createGroup('default');
        for (let i = 0; i < 20; i++) {
          await store.createToken({ tokenHash: hashToken(`race-${i}`), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
          const results = await Promise.all([store.consumeToken(hashToken(`race-${i}`), T0), other.consumeToken(hashToken(`race-${i}`), T0)]);
          assert.equal(results.filter((r) => r.ok).length, 1, `race ${i}: ${JSON.stringify(results)}`);
          assert.deepEqual(
            results.find((r) => !r.ok),
            { ok: false, reason: 'used-up' },
          );
        }
      });
    });

    describe('connector registration', () => {
      it('creates the connector and its certificate and uses the token, in one step', async () => {
        const g = await store.createGroup('default');
        await store.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 2 });
        const calls: Connector[] = [];
        const reg = await store.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'web-1', version: '0.1.0' }, issuer(calls));
        assert.match(reg.connector.id, /^con_/);
        assert.deepEqual(reg.connector, {
          id: reg.connector.id,
          name: 'web-1',
          groupId: g.id,
          version: '0.1.0',
          createdAt: T0,
          lastSeenAt: T0,
          revokedAt: null,
        });
        assert.deepEqual(calls, [reg.connector]);
        assert.equal(reg.issued.pem, `CERT for ${reg.connector.id}`);
        assert.equal(reg.certificate.connectorId, reg.connector.id);
        assert.equal(reg.certificate.revokedAt, null);
        assert.equal(reg.token.usesLeft, 1);
        assert.deepEqual(await store.getConnector(reg.connector.id), reg.connector);
        assert.deepEqual(await store.lookupCertificate(reg.certificate.serial), { certificate: reg.certificate, connector: reg.connector });
      });

      for (const [reason, errCode] of [
        ['unknown', 'ERR_TOKEN_UNKNOWN'],
        ['expired', 'ERR_TOKEN_EXPIRED'],
        ['used-up', 'ERR_TOKEN_USED_UP'],
        ['group-deleted', 'ERR_TOKEN_GROUP_DELETED'],
      ] as const) {
        it(`refuses a token that is ${reason} with ${errCode} and stores nothing`, async () => {
          const g = await store.createGroup('default');
          const other = await store.createGroup('other');
          const t = await store.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
          let secret = 't';
          let now = T0;
          if (reason === 'unknown') secret = 'nope';
          if (reason === 'expired') now = T0 + 2 * HOUR;
          if (reason === 'used-up') await store.consumeToken(hashToken('t'), T0);
          if (reason === 'group-deleted') await store.deleteGroup(g.id);
          const before = await snapshot(store);
          const { events, stop } = record(store);
          const calls: Connector[] = [];
          await assert.rejects(
            store.registerConnector({ tokenHash: hashToken(secret), now, name: 'c', version: '1' }, issuer(calls)),
            (err: unknown) => {
              code(errCode)(err);
              assert.equal((err as { reason?: unknown }).reason, reason);
              assert.match((err as Error).message, /drawbridge-relay token create/);
              return true;
            },
          );
          stop();
          assert.deepEqual(calls, [], 'nothing is signed for a refused token');
          assert.deepEqual(events, []);
          assert.deepEqual(await snapshot(store), before);
          assert.deepEqual(await store.listConnectors({ groupId: other.id }), []);
          assert.equal((await store.getToken(t.id))?.usesLeft, reason === 'used-up' ? 0 : 1);
        });
      }

      it('stores nothing and keeps the token use when issuing fails', async () => {
        const g = await store.createGroup('default');
        const t = await store.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
        const { events, stop } = record(store);
        await assert.rejects(
          store.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'c', version: '1' }, () => {
            throw new Error('CSR signature invalid');
          }),
          /CSR signature invalid/,
        );
        stop();
        assert.deepEqual(events, []);
        assert.deepEqual(await store.listConnectors(), []);
        assert.equal((await store.getToken(t.id))?.usesLeft, 1);
      });

      it('lets the issuer read the store while the registration is open', async () => {
        await store.saveCa({ keyPem: 'KEY', certPem: 'CERT' });
        const g = await store.createGroup('default');
        await store.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
        const reg = await store.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'c', version: '1' }, async (connector) => {
          const ca = await store.getCa();
          const group = await store.getGroup(connector.groupId);
          return { serial: 'abc', notBefore: T0, notAfter: T0 + 1, signedBy: ca?.certPem, group: group?.name };
        });
        assert.equal(reg.issued.signedBy, 'CERT');
        assert.equal(reg.issued.group, 'default');
      });

      it('refuses a duplicate certificate serial and stores nothing', async () => {
        const g = await store.createGroup('default');
        const t = await store.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 2 });
        const first = await store.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'a', version: '1' }, issuer());
        await assert.rejects(
          store.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'b', version: '1' }, () => ({
            serial: first.certificate.serial,
            notBefore: T0,
            notAfter: T0 + 1,
          })),
          code('ERR_STORE_CONFLICT'),
        );
        assert.deepEqual(await store.listConnectors(), [first.connector]);
        assert.equal((await store.getToken(t.id))?.usesLeft, 1);
      });

      it('registers exactly one connector when two relays race for a one-use token', async () => {
        const other = await peer();
        const g = await store.createGroup('default');
        for (let i = 0; i < 10; i++) {
          await store.createToken({ tokenHash: hashToken(`race-${i}`), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
          const input = { tokenHash: hashToken(`race-${i}`), now: T0, name: `c${i}`, version: '1' };
          const results = await Promise.allSettled([store.registerConnector(input, issuer()), other.registerConnector(input, issuer())]);
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
          const failed = results.find((r) => r.status === 'rejected');
          code('ERR_TOKEN_USED_UP')(failed?.reason);
        }
        assert.equal((await store.listConnectors()).length, 10);
      });
    });

    describe('connectors and certificates', () => {
      async function registered(s: Store, name = 'c') {
        const g = (await s.getGroupByName('default')) ?? (await s.createGroup('default'));
        const secret = `tok-${name}`;
        await s.createToken({ tokenHash: hashToken(secret), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
        return s.registerConnector({ tokenHash: hashToken(secret), now: T0, name, version: '1' }, issuer());
      }

      it('lists connectors, by group too', async () => {
        const a = await registered(store, 'a');
        const other = await store.createGroup('other');
        await store.createToken({ tokenHash: hashToken('o'), groupId: other.id, expiresAt: T0 + HOUR, uses: 1 });
        const b = await store.registerConnector({ tokenHash: hashToken('o'), now: T0 + 1, name: 'b', version: '1' }, issuer());
        assert.deepEqual(await store.listConnectors(), [a.connector, b.connector]);
        assert.deepEqual(await store.listConnectors({ groupId: other.id }), [b.connector]);
        assert.equal(await store.getConnector('con_missing'), null);
      });

      it('records when a connector was last seen, never moving backwards', async () => {
        const { connector } = await registered(store);
        await store.touchConnector(connector.id, { at: T0 + 100, version: '1.1' });
        await store.touchConnector(connector.id, { at: T0 + 50 });
        const seen = await store.getConnector(connector.id);
        assert.equal(seen?.lastSeenAt, T0 + 100);
        assert.equal(seen?.version, '1.1');
        await assert.rejects(store.touchConnector('con_missing', { at: T0 }), code('ERR_STORE_NOT_FOUND'));
      });

      it('revokes a connector with all its certificates, idempotently', async () => {
        const { connector, certificate } = await registered(store);
        const renewed = await store.addCertificate({ serial: 'ABCDEF01', connectorId: connector.id, notBefore: T0 + 1, notAfter: T0 + 2 });
        assert.equal(renewed.serial, 'abcdef01');
        const revoked = await store.revokeConnector(connector.id, T0 + 10);
        assert.equal(revoked.revokedAt, T0 + 10);
        assert.equal((await store.revokeConnector(connector.id, T0 + 20)).revokedAt, T0 + 10);
        for (const serial of [certificate.serial, renewed.serial]) {
          const found = await store.lookupCertificate(serial);
          assert.equal(found?.certificate.revokedAt, T0 + 10);
          assert.equal(found?.connector.revokedAt, T0 + 10);
        }
        await assert.rejects(
          store.addCertificate({ serial: 'ff', connectorId: connector.id, notBefore: T0, notAfter: T0 + 1 }),
          code('ERR_CONNECTOR_REVOKED'),
        );
        assert.equal(await store.lookupCertificate('ff'), null);
        await assert.rejects(store.revokeConnector('con_missing', T0), code('ERR_STORE_NOT_FOUND'));
      });

      it('adds, looks up, lists and revokes certificates by normalized serial', async () => {
        const { connector, certificate } = await registered(store);
        const added = await store.addCertificate({ serial: '00:0A:BC', connectorId: connector.id, notBefore: T0 + 5, notAfter: T0 + 9 });
        assert.deepEqual(added, { serial: 'abc', connectorId: connector.id, notBefore: T0 + 5, notAfter: T0 + 9, revokedAt: null });
        assert.deepEqual((await store.lookupCertificate('0ABC'))?.certificate, added);
        assert.deepEqual(await store.listCertificates(connector.id), [certificate, added]);
        const revoked = await store.revokeCertificate('ABC', T0 + 7);
        assert.equal(revoked.revokedAt, T0 + 7);
        assert.equal((await store.lookupCertificate('abc'))?.connector.revokedAt, null, 'the connector stays active');
        assert.equal(await store.lookupCertificate('123456'), null);
        await assert.rejects(store.lookupCertificate('not-hex'), code('ERR_STORE_INVALID'));
        await assert.rejects(store.revokeCertificate('123456', T0), code('ERR_STORE_NOT_FOUND'));
        await assert.rejects(
          store.addCertificate({ serial: '12', connectorId: 'con_missing', notBefore: T0, notAfter: T0 }),
          code('ERR_STORE_NOT_FOUND'),
        );
        await assert.rejects(
          store.addCertificate({ serial: 'abc', connectorId: connector.id, notBefore: T0, notAfter: T0 }),
          code('ERR_STORE_CONFLICT'),
        );
        assert.equal((await store.listCertificates(connector.id)).length, 2);
      });
    });

    describe('applications', () => {
      it('stores every AppConfig field and finds apps by id, name and host in any case', async () => {
        const g = await store.createGroup('default');
        const input = app(g.id, {
          externalHost: 'Hello.Example.COM',
          preauth: 'local',
          hostHeader: 'intranet.local',
          timeouts: { connectMs: 1, headMs: 2, idleMs: 3, totalMs: 4 },
          limits: { maxRequestBodyBytes: 5_000_000_000 },
          insecureSkipVerify: true,
          denyRobots: false,
          bearerAudience: 'api://hello',
        });
        const created = await store.createApp(input);
        assert.match(created.id, /^app_/);
        assert.deepEqual(created, { ...input, id: created.id, externalHost: 'hello.example.com' });
        assert.deepEqual(await store.getApp(created.id), created);
        assert.deepEqual(await store.getAppByName('hello'), created);
        assert.deepEqual(await store.findAppByHost('HELLO.example.com'), created);
        assert.deepEqual(await store.findAppByHost('hello.example.com:8080'), created);
        assert.equal(await store.findAppByHost('other.example.com'), null);
        assert.equal(await store.getApp('app_missing'), null);
        assert.equal(await store.getAppByName('missing'), null);
      });

      it('lists apps, by group too', async () => {
        const g = await store.createGroup('default');
        const h = await store.createGroup('branch');
        const a = await store.createApp(app(g.id, { name: 'a', externalHost: 'a.example.com' }));
        const b = await store.createApp(app(h.id, { name: 'b', externalHost: 'b.example.com' }));
        assert.deepEqual(await store.listApps(), [a, b]);
        assert.deepEqual(await store.listApps({ groupId: h.id }), [b]);
      });

      it('refuses a taken host (any case), a taken name or a missing group, and stores nothing', async () => {
        const g = await store.createGroup('default');
        const first = await store.createApp(app(g.id));
        const { events, stop } = record(store);
        await assert.rejects(store.createApp(app(g.id, { name: 'other', externalHost: 'HELLO.example.com' })), (err: unknown) => {
          code('ERR_STORE_CONFLICT')(err);
          assert.match((err as Error).message, /hello\.example\.com.*"hello"/);
          return true;
        });
        await assert.rejects(store.createApp(app(g.id, { externalHost: 'other.example.com' })), code('ERR_STORE_CONFLICT'));
        await assert.rejects(store.createApp(app('grp_missing', { name: 'x', externalHost: 'x.example.com' })), code('ERR_STORE_NOT_FOUND'));
        await assert.rejects(store.createApp(app(g.id, { name: 'x', externalHost: 'bad host' })), code('ERR_STORE_INVALID'));
        stop();
        assert.deepEqual(events, []);
        assert.deepEqual(await store.listApps(), [first]);
      });

      it('updates apps, moving them between groups, and refuses conflicts unchanged', async () => {
        const g = await store.createGroup('default');
        const h = await store.createGroup('branch');
        const a = await store.createApp(app(g.id, { name: 'a', externalHost: 'a.example.com' }));
        const b = await store.createApp(app(g.id, { name: 'b', externalHost: 'b.example.com' }));
        const { events, stop } = record(store);
        const updated = await store.updateApp(a.id, { group: h.id, internalUrl: 'http://10.0.0.6/', headers: [], name: undefined });
        stop();
        assert.deepEqual(updated, { ...a, group: h.id, internalUrl: 'http://10.0.0.6/', headers: [] });
        assert.deepEqual(await store.getApp(a.id), updated);
        assert.deepEqual(
          new Set(events),
          new Set([
            { type: 'apps-changed', groupId: h.id, appId: a.id },
            { type: 'apps-changed', groupId: g.id, appId: a.id },
          ]),
        );
        await assert.rejects(store.updateApp(a.id, { externalHost: 'B.EXAMPLE.COM' }), code('ERR_STORE_CONFLICT'));
        await assert.rejects(store.updateApp(a.id, { name: 'b' }), code('ERR_STORE_CONFLICT'));
        await assert.rejects(store.updateApp(a.id, { group: 'grp_missing' }), code('ERR_STORE_NOT_FOUND'));
        await assert.rejects(store.updateApp('app_missing', { name: 'z' }), code('ERR_STORE_NOT_FOUND'));
        assert.deepEqual(await store.listApps(), [updated, b]);
        assert.deepEqual(await store.updateApp(a.id, { externalHost: 'A.example.com' }), updated, 'its own host in another case is fine');
      });

      it('deletes apps', async () => {
        const g = await store.createGroup('default');
        const a = await store.createApp(app(g.id));
        await store.deleteApp(a.id);
        assert.equal(await store.getApp(a.id), null);
        assert.equal(await store.findAppByHost(a.externalHost), null);
        await assert.rejects(store.deleteApp(a.id), code('ERR_STORE_NOT_FOUND'));
        await store.createApp(app(g.id));
      });
    });

    describe('local users', () => {
      it('creates, finds, lists, updates and deletes users', async () => {
        const ann = await store.createUser({ name: 'ann', passwordHash: 'scrypt$1', groups: ['staff', 'ops'] });
        assert.match(ann.id, /^usr_/);
        assert.deepEqual({ ...ann, createdAt: 0, updatedAt: 0 }, {
          id: ann.id,
          name: 'ann',
          passwordHash: 'scrypt$1',
          groups: ['staff', 'ops'],
          disabled: false,
          createdAt: 0,
          updatedAt: 0,
        });
        const bob = await store.createUser({ name: 'bob', passwordHash: 'scrypt$2', disabled: true });
        assert.deepEqual(bob.groups, []);
        assert.equal(bob.disabled, true);
        assert.deepEqual(await store.getUser(ann.id), ann);
        assert.deepEqual(await store.getUserByName('bob'), bob);
        assert.deepEqual(await store.listUsers(), [ann, bob]);
        const updated = await store.updateUser(ann.id, { passwordHash: 'scrypt$3', groups: [], disabled: true });
        assert.deepEqual({ ...updated, updatedAt: 0 }, { ...ann, passwordHash: 'scrypt$3', groups: [], disabled: true, updatedAt: 0 });
        await store.deleteUser(bob.id);
        assert.equal(await store.getUser(bob.id), null);
        assert.equal(await store.getUserByName('bob'), null);
      });

      it('refuses duplicate names, empty fields and missing users, and stores nothing', async () => {
        const ann = await store.createUser({ name: 'ann', passwordHash: 'h' });
        const bob = await store.createUser({ name: 'bob', passwordHash: 'h' });
        await assert.rejects(store.createUser({ name: 'ann', passwordHash: 'h2' }), code('ERR_STORE_CONFLICT'));
        await assert.rejects(store.createUser({ name: 'cat', passwordHash: '' }), code('ERR_STORE_INVALID'));
        await assert.rejects(store.updateUser(bob.id, { name: 'ann' }), code('ERR_STORE_CONFLICT'));
        await assert.rejects(store.updateUser('usr_missing', { name: 'x' }), code('ERR_STORE_NOT_FOUND'));
        await assert.rejects(store.deleteUser('usr_missing'), code('ERR_STORE_NOT_FOUND'));
        assert.deepEqual(await store.listUsers(), [ann, bob]);
      });
    });

    describe('audit events', () => {
      it('appends events and lists them with filters, paging and limits', async () => {
        const e1 = await store.appendAudit({ at: T0, type: 'user.signin', actor: 'usr_a', app: 'app_1', address: '203.0.113.9', requestId: 'r1', outcome: 'success' });
        const e2 = await store.appendAudit({ at: T0 + 1, type: 'user.signin', actor: 'usr_b', app: 'app_1', outcome: 'denied', details: { why: 'not assigned' } });
        const e3 = await store.appendAudit({ at: T0 + 2, type: 'connector.registered', connector: 'con_1', outcome: 'success', details: { n: 1, list: ['x'] } });
        assert.ok(e1.id < e2.id && e2.id < e3.id);
        assert.deepEqual(e1, { id: e1.id, at: T0, type: 'user.signin', actor: 'usr_a', app: 'app_1', connector: null, address: '203.0.113.9', requestId: 'r1', outcome: 'success', details: {} });
        assert.deepEqual(e3.details, { n: 1, list: ['x'] });
        assert.deepEqual(await store.listAudit(), [e1, e2, e3]);
        assert.deepEqual(await store.listAudit({ order: 'desc', limit: 2 }), [e3, e2]);
        assert.deepEqual(await store.listAudit({ afterId: e1.id }), [e2, e3]);
        assert.deepEqual(await store.listAudit({ beforeId: e3.id, order: 'desc' }), [e2, e1]);
        assert.deepEqual(await store.listAudit({ type: 'user.signin', outcome: 'denied' }), [e2]);
        assert.deepEqual(await store.listAudit({ actor: 'usr_a' }), [e1]);
        assert.deepEqual(await store.listAudit({ app: 'app_1', since: T0 + 1 }), [e2]);
        assert.deepEqual(await store.listAudit({ connector: 'con_1' }), [e3]);
        assert.deepEqual(await store.listAudit({ requestId: 'r1' }), [e1]);
        assert.deepEqual(await store.listAudit({ until: T0 + 1 }), [e1]);
        assert.deepEqual(await store.listAudit({ limit: 0 }), [e1]);
        assert.deepEqual(await store.listAudit({ afterId: e3.id }), []);
        assert.equal(await store.pruneAudit(T0 + 2), 2);
        assert.deepEqual(await store.listAudit(), [e3]);
      });

      it('counts sign-in failures per key: the latest within a window, oldest first; clears and prunes', async () => {
        for (const at of [100, 200, 300, 400]) await store.recordSignInFailure('user:k1', at);
        await store.recordSignInFailure('user:k2', 250);
        assert.deepEqual(await store.signInFailures('user:k1', 150, 10), [200, 300, 400], 'only after `since`');
        assert.deepEqual(await store.signInFailures('user:k1', 0, 2), [300, 400], 'the latest `limit`');
        assert.deepEqual(await store.signInFailures('user:none', 0, 10), []);
        await store.clearSignInFailures('user:k1');
        assert.deepEqual(await store.signInFailures('user:k1', 0, 10), []);
        assert.deepEqual(await store.signInFailures('user:k2', 0, 10), [250], 'other keys untouched');
        assert.equal(await store.pruneSignInFailures(250), 1);
        assert.deepEqual(await store.signInFailures('user:k2', 0, 10), []);
      });

      it('defaults the time to the clock and refuses events without type or outcome', async () => {
        const e = await store.appendAudit({ type: 'relay.started', outcome: 'success' });
        assert.ok(Math.abs(e.at - Date.now()) < 60_000);
        await assert.rejects(store.appendAudit({ type: '', outcome: 'success' }), code('ERR_STORE_INVALID'));
        assert.deepEqual(await store.listAudit(), [e]);
      });

      it('follows events appended by another relay, in order', async () => {
        const other = await peer();
        const appended = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : other).appendAudit({ type: 't', outcome: 'success', details: { i } })),
        );
        const seen = [];
        let after = 0;
        for (;;) {
          const page = await store.listAudit({ afterId: after, limit: 7 });
          if (page.length === 0) break;
          seen.push(...page);
          after = page.at(-1)!.id;
        }
        assert.deepEqual(new Set(seen.map((e) => e.id)), new Set(appended.map((e) => e.id)));
      });
    });

    describe('settings', () => {
      it('gets, sets, sets if absent and deletes', async () => {
        assert.equal(await store.getSetting('session.key'), null);
        await store.setSetting('session.key', 'a');
        await store.setSetting('session.key', 'b');
        assert.equal(await store.getSetting('session.key'), 'b');
        assert.equal(await store.setSettingIfAbsent('session.key', 'c'), 'b');
        assert.equal(await store.setSettingIfAbsent('other', 'd'), 'd');
        assert.equal(await store.deleteSetting('session.key'), true);
        assert.equal(await store.deleteSetting('session.key'), false);
        assert.equal(await store.getSetting('session.key'), null);
        await assert.rejects(store.setSetting('', 'x'), code('ERR_STORE_INVALID'));
      });

      it('lists settings by key prefix, taking % and _ literally', async () => {
        await store.setSetting('node:b', '2');
        await store.setSetting('node:a', '1');
        await store.setSetting('nodes', 'x');
        await store.setSetting('n%de:c', 'y');
        assert.deepEqual((await store.listSettings('node:')).map((s) => [s.key, s.value]), [['node:a', '1'], ['node:b', '2']]);
        assert.deepEqual((await store.listSettings('n%')).map((s) => s.key), ['n%de:c']);
        assert.ok((await store.listSettings('node:'))[0]!.updatedAt > 0);
      });

      it('gives two relays racing for a first-start secret the same value', async () => {
        const other = await peer();
        const [a, b] = await Promise.all([store.setSettingIfAbsent('k', 'from-a'), other.setSettingIfAbsent('k', 'from-b')]);
        assert.equal(a, b);
      });
    });

    describe('change notification', () => {
      it('tells listeners of each committed change, and stops on unsubscribe', async () => {
        const { events, stop } = record(store);
        const g = await store.createGroup('default');
        const a = await store.createApp(app(g.id));
        await store.updateApp(a.id, { internalUrl: 'http://10.0.0.9/' });
        await store.deleteApp(a.id);
        await store.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
        const { connector, certificate } = await store.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'c', version: '1' }, issuer());
        await store.revokeCertificate(certificate.serial, T0 + 1);
        await store.revokeConnector(connector.id, T0 + 2);
        const u = await store.createUser({ name: 'ann', passwordHash: 'h' });
        await store.updateUser(u.id, { disabled: true });
        await store.deleteUser(u.id);
        await store.setSetting('k', 'v');
        await store.setSettingIfAbsent('k', 'w');
        await store.deleteSetting('k');
        await store.deleteGroup(g.id);
        stop();
        await store.createGroup('after-unsubscribe');
        assert.deepEqual(events, [
          { type: 'group-changed', groupId: g.id },
          { type: 'apps-changed', groupId: g.id, appId: a.id },
          { type: 'apps-changed', groupId: g.id, appId: a.id },
          { type: 'apps-changed', groupId: g.id, appId: a.id },
          { type: 'connector-registered', connectorId: connector.id, groupId: g.id },
          { type: 'certificate-revoked', serial: certificate.serial, connectorId: connector.id },
          { type: 'connector-revoked', connectorId: connector.id, groupId: g.id },
          { type: 'user-changed', userId: u.id },
          { type: 'user-changed', userId: u.id },
          { type: 'user-changed', userId: u.id },
          { type: 'setting-changed', key: 'k' },
          { type: 'setting-changed', key: 'k' },
          { type: 'group-changed', groupId: g.id },
        ]);
      });

      it('keeps delivering to other listeners when one throws, and reports the error', async () => {
        const errors: unknown[] = [];
        const s = await open({ onError: (err) => errors.push(err) });
        const stopBad = s.subscribe(() => {
          throw new Error('listener bug');
        });
        const { events, stop } = record(s);
        const g = await s.createGroup('g');
        stopBad();
        stop();
        assert.deepEqual(events, [{ type: 'group-changed', groupId: g.id }]);
        assert.equal(errors.length, 1);
        assert.match(String(errors[0]), /listener bug/);
      });
    });

    describe('two instances on one database', { skip: backend.shared ? false : 'SQLite serves one relay process' }, () => {
      it('see each other’s writes', async () => {
        const other = await open();
        const g = await store.createGroup('default');
        assert.deepEqual(await other.getGroup(g.id), g);
        const a = await other.createApp(app(g.id));
        assert.deepEqual(await store.findAppByHost('hello.example.com'), a);
        await assert.rejects(store.createApp(app(g.id, { name: 'dup' })), code('ERR_STORE_CONFLICT'));
      });

      it('receive each other’s change notifications, and only of committed changes', async () => {
        const other = await open();
        const groupHeard = nextEvent(other, (e) => e.type === 'group-changed');
        const g = await store.createGroup('default');
        await groupHeard;
        const { events, stop } = record(other);
        const heard = nextEvent(other, (e) => e.type === 'apps-changed');
        await assert.rejects(store.createApp(app('grp_missing')), code('ERR_STORE_NOT_FOUND'));
        const a = await store.createApp(app(g.id));
        assert.deepEqual(await heard, { type: 'apps-changed', groupId: g.id, appId: a.id });
        assert.deepEqual(events, [{ type: 'apps-changed', groupId: g.id, appId: a.id }], 'the refused write was never announced');

        const revoked = nextEvent(store, (e) => e.type === 'connector-revoked');
        const userChanged = nextEvent(store, (e) => e.type === 'user-changed');
        await other.createToken({ tokenHash: hashToken('t'), groupId: g.id, expiresAt: T0 + HOUR, uses: 1 });
        const { connector } = await other.registerConnector({ tokenHash: hashToken('t'), now: T0, name: 'c', version: '1' }, issuer());
        await other.revokeConnector(connector.id, T0 + 1);
        const u = await other.createUser({ name: 'ann', passwordHash: 'h' });
        assert.deepEqual(await revoked, { type: 'connector-revoked', connectorId: connector.id, groupId: g.id });
        assert.deepEqual(await userChanged, { type: 'user-changed', userId: u.id });
        stop();
      });

      it('reconnects a dropped notification connection and asks listeners to resync', async () => {
        const errors: unknown[] = [];
        const other = await open({ onError: (err) => errors.push(err) });
        const resync = nextEvent(other, (e) => e.type === 'resync');
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()`,
          [`LISTEN "drawbridge_${storageSchema(storage)}"`],
        );
        assert.equal(rows[0]?.n, 2, 'both instances listen on the schema channel');
        await resync;
        assert.ok(errors.length >= 1, 'the drop was reported');
        const heard = nextEvent(other, (e) => e.type === 'user-changed');
        const u = await store.createUser({ name: 'after-reconnect', passwordHash: 'h' });
        assert.deepEqual(await heard, { type: 'user-changed', userId: u.id });
      });

      it('does not hear another schema’s changes', async () => {
        const elsewhere = await postgres.create();
        try {
          const foreign = await elsewhere.open();
          const { events, stop } = record(store);
          await foreign.createGroup('foreign');
          const mine = nextEvent(store, (e) => e.type === 'group-changed');
          const other = await open();
          const g = await other.createGroup('mine');
          assert.deepEqual(await mine, { type: 'group-changed', groupId: g.id });
          assert.deepEqual(events, [{ type: 'group-changed', groupId: g.id }]);
          stop();
          await foreign.close();
        } finally {
          await elsewhere.destroy();
        }
      });
    });
  });
}

conformance(sqlite, false);
conformance(postgres, pgReason ?? false);

describe('SQLite file', () => {
  it('is readable by its owner only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drawbridge-store-'));
    try {
      const store = await openStore(join(dir, 'nested'));
      await store.saveCa({ keyPem: 'KEY', certPem: 'CERT' });
      await store.close();
      assert.equal(statSync(join(dir, 'nested', SQLITE_FILE)).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'nested')).mode & 0o777, 0o700);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports an unopenable path with ERR_STORE_UNAVAILABLE', async () => {
    await assert.rejects(openStore('/proc/version/not-a-dir'), code('ERR_STORE_UNAVAILABLE'));
  });
});

describe('PostgreSQL connection', { skip: pgReason ?? false }, () => {
  it('reports an unreachable server with ERR_STORE_UNAVAILABLE and no credentials in the message', async () => {
    await assert.rejects(openStore('postgres://alice:hunter2@127.0.0.1:1/db'), (err: unknown) => {
      code('ERR_STORE_UNAVAILABLE')(err);
      assert.doesNotMatch((err as Error).message, /hunter2/);
      return true;
    });
  });
});
