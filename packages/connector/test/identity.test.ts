import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import forge from 'node-forge';
import { createTestPki, tlsHandshake, type TestPki } from '../../../test/helpers/pki.ts';
import type { CertificateAuthority } from '../../relay/src/ca/index.ts';
import {
  certificateAge,
  createCsr,
  DEFAULT_ROTATION_AGE_MS,
  generateIdentity,
  IdentityErrorCode,
  needsRotation,
  parsePin,
  pinMatches,
  pinOf,
  readState,
  STATE_FILES,
  writeStateFiles,
  type StateFiles,
} from '../src/identity/index.ts';

const DAY = 24 * 60 * 60 * 1000;
const HAS_OPENSSL = spawnSync('openssl', ['version']).status === 0;

function mode(info: { mode: number }): number {
  return info.mode & 0o777;
}

describe('connector identity', () => {
  let pki: TestPki;
  let ca: CertificateAuthority;
  let dir: string;
  before(async () => {
    pki = createTestPki();
    ca = pki.authority;
    dir = await mkdtemp(join(tmpdir(), 'drawbridge-identity-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A registration as the relay would answer it. */
  async function register(connectorId = 'con_1'): Promise<StateFiles> {
    const { keyPem, csrPem } = await generateIdentity();
    const issued = ca.signConnectorCsr(csrPem, { connectorId, groupId: 'grp_1' });
    return { key: keyPem, cert: issued.certPem, ca: issued.caChainPem, relayUrl: 'https://relay.example.com:8443', connectorId, groupId: 'grp_1', caPin: ca.pin };
  }

  describe('generateIdentity', () => {
    it('makes an RSA 2048 key and a SHA-256 CSR with an empty subject for it', async () => {
      const { keyPem, csrPem } = await generateIdentity();
      const key = createPrivateKey(keyPem);
      assert.equal(key.asymmetricKeyType, 'rsa');
      assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
      assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
      const csr = forge.pki.certificationRequestFromPem(csrPem);
      assert.equal(csr.verify(), true);
      assert.equal(csr.signatureOid, forge.pki.oids.sha256WithRSAEncryption);
      assert.equal(csr.subject.attributes.length, 0);
      assert.equal(csr.attributes.length, 0);
      const csrKey = csr.publicKey as forge.pki.rsa.PublicKey;
      const jwk = key.export({ format: 'jwk' });
      assert.equal(Buffer.from(csrKey.n.toString(16).padStart(512, '0'), 'hex').toString('base64url'), jwk.n);
    });

    it('produces a CSR that openssl verifies', { skip: !HAS_OPENSSL && 'openssl not installed' }, async () => {
      const { csrPem } = await generateIdentity();
      const r = spawnSync('openssl', ['req', '-verify', '-noout'], { input: csrPem });
      assert.equal(r.status, 0, r.stderr.toString());
    });

    it('is signed by the relay; the certificate verifies against the CA and matches the key', async () => {
      const state = await register('con_sig');
      const cert = new X509Certificate(state.cert);
      const caCert = new X509Certificate(pki.ca.cert);
      assert.ok(cert.checkIssued(caCert));
      assert.ok(cert.verify(caCert.publicKey));
      assert.ok(cert.checkPrivateKey(createPrivateKey(state.key)));
      assert.equal(cert.subject, 'CN=con_sig\nO=grp_1');
    });

    it('works in a mutual TLS handshake', async () => {
      const state = await register('con_tls');
      const server = pki.server(['localhost', '127.0.0.1']);
      const result = await tlsHandshake(
        { key: server.key, cert: server.chain, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true },
        { ca: state.ca, key: state.key, cert: state.cert, servername: 'localhost' },
      );
      assert.equal(result.accepted, true, String(result.serverError));
      assert.equal(result.peer?.subject.CN, 'con_tls');
    });

    it('createCsr accepts a PEM key', async () => {
      const { keyPem } = await generateIdentity();
      const csr = forge.pki.certificationRequestFromPem(createCsr(keyPem));
      assert.equal(csr.verify(), true);
    });
  });

  describe('state files', () => {
    it('writes key and cert with mode 0600 in a 0700 directory, and reads them back', async () => {
      const stateDir = join(dir, 'fresh', 'nested');
      const state = await register();
      await writeStateFiles(stateDir, { ...state, name: 'web-01', custom: { a: 1 } });
      assert.equal(mode(await stat(stateDir)), 0o700);
      for (const file of Object.values(STATE_FILES)) assert.equal(mode(await stat(join(stateDir, file))), 0o600, file);
      const read = await readState(stateDir);
      assert.deepEqual(read, { ...state, name: 'web-01', custom: { a: 1 } });
    });

    it('tightens an existing loose directory and ignores the umask', async () => {
      const stateDir = join(dir, 'loose');
      await mkdir(stateDir, { mode: 0o755 });
      await chmod(stateDir, 0o755);
      const previous = process.umask(0);
      try {
        await writeStateFiles(stateDir, await register());
      } finally {
        process.umask(previous);
      }
      assert.equal(mode(await stat(stateDir)), 0o700);
      assert.equal(mode(await stat(join(stateDir, STATE_FILES.key))), 0o600);
      assert.equal(mode(await stat(join(stateDir, STATE_FILES.cert))), 0o600);
    });

    it('replaces atomically: new inode, same modes, no leftovers', async () => {
      const stateDir = join(dir, 'replace');
      const first = await register('con_r');
      await writeStateFiles(stateDir, first);
      const before = await stat(join(stateDir, STATE_FILES.key));
      const second = await register('con_r');
      await writeStateFiles(stateDir, second);
      const afterStat = await stat(join(stateDir, STATE_FILES.key));
      assert.notEqual(afterStat.ino, before.ino, 'replaced by rename, not rewritten in place');
      assert.equal(mode(afterStat), 0o600);
      assert.deepEqual((await readdir(stateDir)).sort(), Object.values(STATE_FILES).sort());
      const read = await readState(stateDir);
      assert.equal(read.key, second.key);
      assert.equal(read.cert, second.cert);
    });

    it('after a crash before the commit, reads the old pair and cleans up on the next write', async () => {
      const stateDir = join(dir, 'crash-early');
      const old = await register('con_c');
      await writeStateFiles(stateDir, old);
      const next = await register('con_c');
      // Died while writing: a complete key.pem.next, a half cert, a stray temp file.
      await writeFile(join(stateDir, `${STATE_FILES.key}.next`), next.key, { mode: 0o600 });
      await writeFile(join(stateDir, `${STATE_FILES.cert}.next.tmp-abcdef`), next.cert.slice(0, 100), { mode: 0o600 });
      const read = await readState(stateDir);
      assert.equal(read.key, old.key);
      assert.equal(read.cert, old.cert);
      await writeStateFiles(stateDir, next);
      assert.deepEqual((await readdir(stateDir)).sort(), Object.values(STATE_FILES).sort());
      assert.equal((await readState(stateDir)).cert, next.cert);
    });

    it('after a crash between the two renames, reads the new pair and finishes the job on the next write', async () => {
      const stateDir = join(dir, 'crash-mid');
      const old = await register('con_m');
      await writeStateFiles(stateDir, old);
      const next = await register('con_m');
      // key.pem already renamed into place; cert.pem still old; cert.pem.next complete.
      await writeFile(join(stateDir, STATE_FILES.key), next.key, { mode: 0o600 });
      await writeFile(join(stateDir, `${STATE_FILES.cert}.next`), next.cert, { mode: 0o600 });
      const read = await readState(stateDir);
      assert.equal(read.key, next.key);
      assert.equal(read.cert, next.cert);
      const third = await register('con_m');
      await writeStateFiles(stateDir, third);
      assert.deepEqual((await readdir(stateDir)).sort(), Object.values(STATE_FILES).sort());
      assert.equal((await readState(stateDir)).cert, third.cert);
    });

    it('refuses to store a certificate that does not match the key', async () => {
      const a = await register();
      const b = await register();
      await assert.rejects(writeStateFiles(join(dir, 'mismatch'), { ...a, cert: b.cert }), { code: IdentityErrorCode.STATE_CORRUPT });
    });

    it('codes: STATE_MISSING for an empty or absent directory, STATE_CORRUPT for unusable files', async () => {
      await assert.rejects(readState(join(dir, 'absent')), { code: IdentityErrorCode.STATE_MISSING });
      const stateDir = join(dir, 'corrupt');
      const state = await register();
      await writeStateFiles(stateDir, state);
      await writeFile(join(stateDir, STATE_FILES.cert), (await register()).cert);
      await assert.rejects(readState(stateDir), { code: IdentityErrorCode.STATE_CORRUPT });
      await writeFile(join(stateDir, STATE_FILES.cert), state.cert);
      await writeFile(join(stateDir, STATE_FILES.meta), '{not json');
      await assert.rejects(readState(stateDir), { code: IdentityErrorCode.STATE_CORRUPT });
    });

    it('never stores the key anywhere but key.pem', async () => {
      const stateDir = join(dir, 'secret');
      const state = await register();
      await writeStateFiles(stateDir, state);
      for (const file of [STATE_FILES.cert, STATE_FILES.ca, STATE_FILES.meta]) {
        assert.ok(!(await readFile(join(stateDir, file), 'utf8')).includes('PRIVATE KEY'), file);
      }
    });
  });

  describe('rotation', () => {
    async function certFrom(notBefore: Date, validityDays: number): Promise<string> {
      const { csrPem } = await generateIdentity();
      return ca.signConnectorCsr(csrPem, { connectorId: 'con_age', groupId: 'g', notBefore, validityDays }).certPem;
    }

    it('certificateAge is the time since notBefore', async () => {
      const notBefore = new Date('2026-01-01T00:00:00Z');
      const cert = await certFrom(notBefore, 365);
      assert.equal(certificateAge(cert, new Date('2026-01-11T00:00:00Z')), 10 * DAY);
    });

    it('needsRotation turns true at the rotation age (180 days by default)', async () => {
      const notBefore = new Date('2026-01-01T00:00:00Z');
      const cert = await certFrom(notBefore, 365);
      assert.equal(DEFAULT_ROTATION_AGE_MS, 180 * DAY);
      assert.equal(needsRotation(cert, new Date(notBefore.getTime() + 180 * DAY - 1000)), false);
      assert.equal(needsRotation(cert, new Date(notBefore.getTime() + 180 * DAY)), true);
      assert.equal(needsRotation(cert, new Date(notBefore.getTime() + 10 * DAY), 7 * DAY), true);
    });

    it('renews a short-lived certificate at half its lifetime', async () => {
      const notBefore = new Date('2026-01-01T00:00:00Z');
      const cert = await certFrom(notBefore, 90);
      assert.equal(needsRotation(cert, new Date(notBefore.getTime() + 44 * DAY)), false);
      assert.equal(needsRotation(cert, new Date(notBefore.getTime() + 45 * DAY)), true);
    });

    it('throws CERT_INVALID for a certificate it cannot read', () => {
      assert.throws(() => certificateAge('nope', new Date()), { code: IdentityErrorCode.CERT_INVALID });
    });
  });

  describe('pin', () => {
    it('pinOf computes what the relay prints and openssl agrees', { skip: !HAS_OPENSSL && 'openssl not installed' }, () => {
      assert.equal(pinOf(pki.ca.cert), pki.ca.pin);
      const pubkey = spawnSync('openssl', ['x509', '-pubkey', '-noout'], { input: pki.ca.cert }).stdout;
      const der = spawnSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pubkey }).stdout;
      const sum = spawnSync('sha256sum', { input: der }).stdout.toString().split(' ')[0];
      assert.equal(pki.ca.pin, `sha256:${sum}`);
    });

    it('matches the CA certificate, case-insensitively, and not another CA', () => {
      assert.equal(pinMatches(pki.ca.cert, pki.ca.pin), true);
      assert.equal(pinMatches(pki.ca.cert, pki.ca.pin.toUpperCase()), true);
      assert.equal(pinMatches(pki.ca.cert, pki.foreign().pin), false);
      assert.equal(pinMatches('not a certificate', pki.ca.pin), false);
    });

    it('matches a chain only when each certificate is signed by the next', () => {
      assert.equal(pinMatches(pki.server(['localhost']).chain, pki.ca.pin), true);
      // A foreign server certificate with our (public) CA certificate appended must not pass.
      const foreignServer = pki.foreign().authority.issueServerCert(['localhost']);
      assert.equal(pinMatches(foreignServer.certPem + pki.ca.cert, pki.ca.pin), false);
      // A leaf alone does not carry the pinned key.
      assert.equal(pinMatches(pki.server(['localhost']).cert, pki.ca.pin), false);
    });

    it('throws PIN_INVALID for a malformed pin', () => {
      for (const bad of ['', 'sha256:', 'sha1:abcd', `sha256:${'0'.repeat(63)}`, `sha256:${'g'.repeat(64)}`]) {
        assert.throws(() => parsePin(bad), { code: IdentityErrorCode.PIN_INVALID }, bad);
        assert.throws(() => pinMatches(pki.ca.cert, bad), { code: IdentityErrorCode.PIN_INVALID }, bad);
      }
    });

    it('verifies a live TLS peer (getPeerCertificate(true)) against the pin', async () => {
      const server = pki.server(['localhost', '127.0.0.1']);
      const peerChains: tls.DetailedPeerCertificate[] = [];
      for (const cert of [server.chain, server.cert]) {
        const srv = tls.createServer({ key: server.key, cert }, (s) => s.end());
        srv.listen(0, '127.0.0.1');
        await once(srv, 'listening');
        const { port } = srv.address() as AddressInfo;
        // Registration: nothing is trusted yet but the pin.
        const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
        await once(socket, 'secureConnect');
        peerChains.push(socket.getPeerCertificate(true));
        socket.destroy();
        srv.close();
        await once(srv, 'close');
      }
      const [withChain, leafOnly] = peerChains;
      assert.equal(pinMatches(withChain!, pki.ca.pin), true);
      assert.equal(pinMatches(withChain!, pki.foreign().pin), false);
      assert.equal(pinMatches(leafOnly!, pki.ca.pin), false, 'a server that does not send its CA cannot be pinned');
    });
  });
});
