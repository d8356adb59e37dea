/**
 * Connector identity on a real relay (`serve` with its SQLite store and CA):
 * token registration with a pinned CA, every refusal, config pull and change
 * notices, rotation under load with a moved clock, and revocation closing a
 * live tunnel.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { type RunningConnector, registerConnector, startService } from '@drawbridge/connector';
import { createCsr } from '../packages/connector/src/identity/index.ts';
import { hashToken, type Store } from '../packages/relay/src/store/index.ts';
import type { RunningRelay } from '../packages/relay/src/server/serve.ts';
import { appConfig, client, logger, type Origin, startOrigin } from './helpers/harness.ts';
import { serve, serveConfig } from './helpers/serve.ts';

const DAY = 86_400_000;

async function newToken(store: Store, opts: { group?: string; uses?: number; ttlMs?: number } = {}): Promise<string> {
  const secret = `dbt_${randomBytes(32).toString('base64url')}`;
  const group = await store.ensureGroup(opts.group ?? 'default');
  await store.createToken({ tokenHash: hashToken(secret), groupId: group.id, expiresAt: Date.now() + (opts.ttlMs ?? 3_600_000), uses: opts.uses ?? 1 });
  return secret;
}

function stateDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'drawbridge-conn-')), 'state');
}

async function rawRegister(relay: RunningRelay, body: unknown): Promise<{ status: number; code: string }> {
  const res = await request(`${relay.connectorUrl}/v1/register`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    dispatcher: new (await import('undici')).Agent({ connect: { rejectUnauthorized: false } }),
  });
  const parsed = (await res.body.json()) as { error?: { code: string } };
  return { status: res.statusCode, code: parsed.error?.code ?? '' };
}

describe('connector identity', () => {
  let relay: RunningRelay;
  let origin: Origin;
  const release = Promise.withResolvers<void>();

  before(async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === '/long') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(Buffer.alloc(1024 * 1024, 1));
        void release.promise.then(() => res.end(Buffer.alloc(1024 * 1024, 2)));
        return;
      }
      res.end(`hello from ${req.url}`);
    });
    relay = await serve(serveConfig({ 'connector.registrationRate': 50 }));
    const group = await relay.store.ensureGroup('default');
    await relay.store.createApp({ ...appConfig({ internalUrl: origin.url }), group: group.id });
  });

  after(async () => {
    release.resolve();
    await relay?.stop();
    await origin?.close();
    await client.close();
  });

  async function registered(name: string): Promise<{ dir: string; service: RunningConnector }> {
    const dir = stateDir();
    await registerConnector({ relayUrl: relay.connectorUrl, token: await newToken(relay.store), caPin: relay.caPin, name, stateDir: dir });
    const service = await startService({ stateDir: dir, logger, backoff: { initialMs: 50, maxMs: 200 } });
    const id = service.puller.current()!.connectorId;
    while (relay.relay.registry.connections(id).length < 2) await once(relay.events, 'open');
    return { dir, service };
  }

  it('registers with a token and the CA pin, writes 0600 files, pulls config and serves', async () => {
    const { dir, service } = await registered('web-1');
    try {
      for (const f of ['key.pem', 'cert.pem', 'ca.pem', 'state.json']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      const config = service.puller.current()!;
      assert.equal(config.group.name, 'default');
      assert.deepEqual(config.apps.map((a) => a.externalHost), ['hello.test']);
      const res = await request(`${relay.relay.publicUrl}/x`, { headers: { host: 'hello.test' }, dispatcher: client });
      assert.equal(await res.body.text(), 'hello from /x');
      const events = await relay.store.listAudit({ type: 'connector.registered' });
      assert.ok(events.some((e) => e.connector === config.connectorId));
      // The admin listener shows it to monitoring, without the admin credential.
      const metrics = await (await request(`${relay.adminUrl}/metrics`, { dispatcher: client })).body.text();
      assert.match(metrics, new RegExp(`drawbridge_connector_certificate_expiry_seconds\\{connector="${config.connectorId}"\\} 3\\d{7}`));
      assert.match(metrics, /drawbridge_tunnel_connections\{group="grp_\w+"\} 2/);
      assert.match(metrics, /drawbridge_requests_total\{app="hello",status="200"\} 1/);
      assert.match(metrics, /drawbridge_registrations_total\{outcome="success",code=""\} \d/);
      assert.equal((await request(`${relay.adminUrl}/healthz`, { dispatcher: client })).statusCode, 200);
      assert.equal((await request(`${relay.adminUrl}/readyz`, { dispatcher: client })).statusCode, 200);
    } finally {
      await service.stop(200);
    }
  });

  it('tells connectors about new apps; they pull and serve them', async () => {
    const { service } = await registered('web-2');
    try {
      const group = await relay.store.ensureGroup('default');
      const updated = once(service.puller, 'config');
      await relay.store.createApp({ ...appConfig({ internalUrl: origin.url }), name: 'second', externalHost: 'second.test', group: group.id });
      await updated;
      const res = await request(`${relay.relay.publicUrl}/y`, { headers: { host: 'second.test' }, dispatcher: client });
      assert.equal(await res.body.text(), 'hello from /y');
    } finally {
      await service.stop(200);
    }
  });

  it('refuses a relay whose certificate does not match the pin, without sending the token', async () => {
    const secret = await newToken(relay.store);
    const wrongPin = `sha256:${'ab'.repeat(32)}`;
    await assert.rejects(registerConnector({ relayUrl: relay.connectorUrl, token: secret, caPin: wrongPin, stateDir: stateDir() }), { code: 'ERR_CA_PIN_MISMATCH' });
    // The token still has its use: it never reached the relay.
    const tokens = await relay.store.listTokens();
    const used = await relay.store.consumeToken(hashToken(secret), Date.now());
    assert.equal(used.ok, true, `token was consumed (${tokens.length} tokens)`);
  });

  it('refuses unknown, expired, used-up and deleted-group tokens, storing nothing', async () => {
    const before = (await relay.store.listConnectors()).length;
    const reg = (token: string): Promise<unknown> => registerConnector({ relayUrl: relay.connectorUrl, token, caPin: relay.caPin, stateDir: stateDir() });
    await assert.rejects(reg('dbt_nonsense'), { code: 'ERR_TOKEN_UNKNOWN' });
    await assert.rejects(reg(await newToken(relay.store, { ttlMs: -1000 })), { code: 'ERR_TOKEN_EXPIRED' });
    const once1 = await newToken(relay.store, { uses: 1 });
    await reg(once1);
    await assert.rejects(reg(once1), { code: 'ERR_TOKEN_USED_UP' });
    const doomed = await newToken(relay.store, { group: 'doomed' });
    await relay.store.deleteGroup((await relay.store.getGroupByName('doomed'))!.id);
    await assert.rejects(reg(doomed), { code: 'ERR_TOKEN_GROUP_DELETED' });
    assert.equal((await relay.store.listConnectors()).length, before + 1);
  });

  it('refuses malformed, weak, tampered and subject-choosing CSRs, and keeps the token', async () => {
    const token = await newToken(relay.store);
    const weak = createCsr(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey);
    const good = createCsr(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[100] = der[100]! ^ 0xff; // inside the public key modulus: still parses, no longer verifies
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const forge = (await import('node-forge')).default;
    const keys = forge.pki.rsa.generateKeyPair(2048);
    const chosen = forge.pki.createCertificationRequest();
    chosen.publicKey = keys.publicKey;
    chosen.setSubject([{ name: 'commonName', value: 'con_admin' }]);
    chosen.sign(keys.privateKey, forge.md.sha256.create());
    const cases: Array<[string, string]> = [
      ['not a csr', 'ERR_CSR_MALFORMED'],
      [weak, 'ERR_CSR_WEAK_KEY'],
      [tampered, 'ERR_CSR_BAD_SIGNATURE'],
      [forge.pki.certificationRequestToPem(chosen), 'ERR_CSR_SUBJECT'],
    ];
    for (const [csr, code] of cases) {
      const r = await rawRegister(relay, { token, csr, name: 'bad' });
      assert.deepEqual(r, { status: 400, code });
    }
    assert.equal((await relay.store.consumeToken(hashToken(token), Date.now())).ok, true, 'refusals left the token unused');
  });

  it('rate-limits registration per source address', async () => {
    const limited = await serve(serveConfig({ 'connector.registrationRate': 3 }));
    try {
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) codes.push((await rawRegister(limited, { token: 'dbt_x', csr: 'x' })).code);
      assert.deepEqual(codes, ['ERR_TOKEN_UNKNOWN', 'ERR_TOKEN_UNKNOWN', 'ERR_TOKEN_UNKNOWN', 'ERR_RATE_LIMITED']);
    } finally {
      await limited.stop();
    }
  });

  it('rotates at the rotation age while a long download is in flight, without dropping it', async () => {
    const dir = stateDir();
    await registerConnector({ relayUrl: relay.connectorUrl, token: await newToken(relay.store), caPin: relay.caPin, stateDir: dir });
    let offset = 0;
    const service = await startService({ stateDir: dir, logger, now: () => Date.now() + offset, backoff: { initialMs: 50, maxMs: 200 } });
    try {
      const id = service.puller.current()!.connectorId;
      while (relay.relay.registry.connections(id).length < 2) await once(relay.events, 'open');
      const oldSerial = relay.relay.registry.connections(id)[0]!.serial;
      // Only this connector may take the download.
      for (const other of relay.relay.registry.connections()) if (other.connectorId !== id) other.session.drain('test');
      const download = await request(`${relay.relay.publicUrl}/long`, { headers: { host: 'hello.test' }, dispatcher: client });
      const body = download.body[Symbol.asyncIterator]();
      let received = ((await body.next()).value as Buffer).length;

      offset = 181 * DAY; // the certificate is now past the 180-day rotation age
      await service.puller.refresh();
      const newSerial = (await relay.store.listCertificates(id)).map((c) => c.serial).find((s) => s !== oldSerial);
      assert.ok(newSerial, 'a new certificate was issued');
      // Each slot dials with the new certificate; the old connections drain.
      while (relay.relay.registry.connections(id).filter((c) => c.serial === newSerial).length < 2) await once(relay.events, 'open');

      release.resolve();
      for (let r = await body.next(); !r.done; r = await body.next()) received += (r.value as Buffer).length;
      assert.equal(received, 2 * 1024 * 1024, 'the download crossed the rotation intact');
      const certs = await relay.store.listCertificates(id);
      assert.equal(certs.length, 2);
      assert.ok(certs.every((c) => c.revokedAt === null), 'the old serial stays valid until it expires');
      assert.equal((await relay.store.listAudit({ type: 'connector.rotated', connector: id })).length, 1);
    } finally {
      await service.stop(200);
    }
  });

  it('revocation closes live tunnels within a second and the connector stops for good', async () => {
    const { service } = await registered('to-revoke');
    try {
      const id = service.puller.current()!.connectorId;
      assert.equal(relay.relay.registry.connections(id).length, 2);
      const closed = Promise.all([once(relay.events, 'close'), once(relay.events, 'close')]);
      const started = performance.now();
      await relay.store.revokeConnector(id, Date.now());
      await closed;
      assert.ok(performance.now() - started < 1000, 'revocation closed the tunnels within a second');
      assert.equal(relay.relay.registry.connections(id).length, 0);
      const fatal = await service.fatal;
      assert.equal(fatal.code, 'ERR_CERT_REVOKED');
    } finally {
      await service.stop(100);
    }
    const id = service.puller.current()!.connectorId;
    const refused = await relay.store.listAudit({ type: 'connector.refused', connector: id });
    assert.ok(refused.length >= 1);
  });

  it('serves with the cached configuration when the relay is unreachable at start', async () => {
    const dir = stateDir();
    const own = await serve(serveConfig());
    const group = await own.store.ensureGroup('default');
    await own.store.createApp({ ...appConfig({ internalUrl: origin.url }), group: group.id });
    await registerConnector({ relayUrl: own.connectorUrl, token: await newToken(own.store), caPin: own.caPin, stateDir: dir });
    const first = await startService({ stateDir: dir, logger });
    const revision = first.puller.current()!.revision;
    await first.stop(100);
    await own.stop();
    const second = await startService({ stateDir: dir, logger, backoff: { initialMs: 50, maxMs: 100 } });
    try {
      assert.equal(second.puller.current()!.revision, revision);
    } finally {
      await second.stop(100);
    }
  });
});
