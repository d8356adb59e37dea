import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import forge from 'node-forge';
import { generateIdentity } from '../../connector/src/identity/index.ts';
import { createTestPki, tlsHandshake, type TestPki } from '../../../test/helpers/pki.ts';
import {
  CaErrorCode,
  CertificateAuthority,
  clientCertInfo,
  normalizeSerial,
  openCaFiles,
  pin,
  verifyClientCert,
} from '../src/ca/index.ts';

const DAY = 24 * 60 * 60 * 1000;
const HAS_OPENSSL = spawnSync('openssl', ['version']).status === 0;

function openssl(args: string[], input: string | Buffer): Buffer {
  const r = spawnSync('openssl', args, { input });
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

/** A CSR crafted with forge, for the refusals generateIdentity would never produce. */
function craftCsr(options: {
  key?: KeyObject;
  bits?: number;
  subject?: forge.pki.CertificateField[];
  altNames?: Array<{ type: number; value?: string; ip?: string }>;
  md?: 'sha1' | 'sha256';
} = {}): string {
  const key = options.key ?? generateKeyPairSync('rsa', { modulusLength: options.bits ?? 2048 }).privateKey;
  const forgeKey = forge.pki.privateKeyFromPem(key.export({ type: 'pkcs1', format: 'pem' }) as string);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  csr.setSubject(options.subject ?? []);
  if (options.altNames) {
    csr.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames: options.altNames }] }]);
  }
  csr.sign(forgeKey, options.md === 'sha1' ? forge.md.sha1.create() : forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
}

function derToPem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function assertCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: string }).code, code);
    return true;
  });
}

const ids = { connectorId: 'con_0001', groupId: 'grp_default' };

describe('certificate authority', () => {
  let pki: TestPki;
  let ca: CertificateAuthority;
  before(() => {
    pki = createTestPki();
    ca = pki.authority;
  });

  describe('create and load', () => {
    it('creates a 10-year RSA 3072 CA with basicConstraints CA and keyCertSign', () => {
      const now = new Date('2026-03-01T00:00:00Z');
      const created = CertificateAuthority.create({ now });
      const x509 = new X509Certificate(created.certPem);
      assert.equal(x509.ca, true);
      assert.equal(x509.publicKey.asymmetricKeyDetails?.modulusLength, 3072);
      assert.equal(new Date(x509.validTo).getUTCFullYear(), 2036);
      assert.ok(x509.verify(x509.publicKey), 'self-signed');
      const cert = forge.pki.certificateFromPem(created.certPem);
      assert.equal(cert.signatureOid, forge.pki.oids.sha256WithRSAEncryption);
      const bc = cert.getExtension('basicConstraints') as { cA?: boolean; critical?: boolean };
      assert.equal(bc.cA, true);
      assert.equal(bc.critical, true);
      const ku = cert.getExtension('keyUsage') as { keyCertSign?: boolean; digitalSignature?: boolean };
      assert.equal(ku.keyCertSign, true);
      assert.notEqual(ku.digitalSignature, true);
    });

    it('loads an operator-supplied CA with the same pin, and its certificates verify against the original', async () => {
      const loaded = CertificateAuthority.load(ca.certPem, ca.keyPem);
      assert.equal(loaded.pin, ca.pin);
      const { csrPem } = await generateIdentity();
      const issued = loaded.signConnectorCsr(csrPem, ids);
      assert.ok(new X509Certificate(issued.certPem).verify(new X509Certificate(ca.certPem).publicKey));
    });

    it('refuses a CA certificate that is not a CA, a mismatched key and garbage', () => {
      const server = pki.server(['localhost']);
      assertCode(() => CertificateAuthority.load(server.cert, server.key), CaErrorCode.CA_INVALID);
      assertCode(() => CertificateAuthority.load(ca.certPem, pki.foreign().key), CaErrorCode.CA_INVALID);
      assertCode(() => CertificateAuthority.load('nope', ca.keyPem), CaErrorCode.CA_INVALID);
      assertCode(() => CertificateAuthority.load(ca.certPem, 'nope'), CaErrorCode.CA_INVALID);
    });

    it('refuses to load an expired CA', () => {
      assertCode(() => CertificateAuthority.load(ca.certPem, ca.keyPem, new Date(Date.now() + 11 * 365 * DAY)), CaErrorCode.CA_EXPIRED);
    });
  });

  describe('CA files', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'drawbridge-ca-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('creates the CA on first start with a 0600 key, then loads the same CA', async () => {
      const paths = { certPath: join(dir, 'first', 'ca.crt'), keyPath: join(dir, 'first', 'ca.key') };
      const first = await openCaFiles({ ...paths, create: true, keyBits: 2048 });
      assert.equal((await stat(paths.keyPath)).mode & 0o777, 0o600);
      const again = await openCaFiles({ ...paths, create: true });
      assert.equal(again.pin, first.pin);
    });

    it('refuses a lone certificate, and missing files when it may not create', async () => {
      const paths = { certPath: join(dir, 'lone.crt'), keyPath: join(dir, 'lone.key') };
      await assert.rejects(openCaFiles({ ...paths, create: false }), { code: CaErrorCode.CA_INVALID });
      await writeFile(paths.certPath, ca.certPem);
      await assert.rejects(openCaFiles({ ...paths, create: true }), { code: CaErrorCode.CA_INVALID });
    });
  });

  describe('pin', () => {
    it('is sha256 of the SubjectPublicKeyInfo DER, as openssl computes it', { skip: !HAS_OPENSSL && 'openssl not installed' }, () => {
      const spki = openssl(['pkey', '-pubin', '-outform', 'der'], openssl(['x509', '-pubkey', '-noout'], ca.certPem));
      const digest = spawnSync('sha256sum', { input: spki }).stdout.toString().split(' ')[0];
      const viaOpenssl = openssl(['dgst', '-sha256', '-hex'], spki).toString().trim().split(' ').pop();
      assert.equal(ca.pin, `sha256:${viaOpenssl}`);
      if (digest) assert.equal(ca.pin, `sha256:${digest}`);
      assert.equal(pin(ca.certPem), ca.pin);
      assert.match(ca.pin, /^sha256:[0-9a-f]{64}$/);
    });
  });

  describe('signConnectorCsr', () => {
    it('signs a CSR from generateIdentity; the certificate verifies against the CA', async () => {
      const { keyPem, csrPem } = await generateIdentity();
      const notBefore = new Date(Date.now() - 60_000);
      const issued = ca.signConnectorCsr(csrPem, { ...ids, notBefore });
      const x509 = new X509Certificate(issued.certPem);
      const caCert = new X509Certificate(ca.certPem);
      assert.ok(x509.checkIssued(caCert));
      assert.ok(x509.verify(caCert.publicKey));
      assert.ok(x509.checkPrivateKey(createPrivateKey(keyPem)));
      assert.equal(x509.subject, 'CN=con_0001\nO=grp_default');
      assert.deepEqual(x509.keyUsage, ['1.3.6.1.5.5.7.3.2']);
      assert.equal(x509.ca, false);
      assert.equal(new Date(x509.validFrom).getTime(), Math.floor(notBefore.getTime() / 1000) * 1000);
      assert.equal(issued.notAfter.getTime() - issued.notBefore.getTime(), 365 * DAY);
      assert.equal(issued.notAfter.getTime(), new Date(x509.validTo).getTime());
      assert.equal(issued.caChainPem, ca.chainPem);

      const cert = forge.pki.certificateFromPem(issued.certPem);
      assert.equal(cert.signatureOid, forge.pki.oids.sha256WithRSAEncryption);
      const ku = cert.getExtension('keyUsage') as { digitalSignature?: boolean; keyCertSign?: boolean };
      assert.equal(ku.digitalSignature, true);
      assert.notEqual(ku.keyCertSign, true);
    });

    it('uses a random positive 128-bit serial, returned as normalized lower-case hex', async () => {
      const { csrPem } = await generateIdentity();
      const serials = new Set<string>();
      for (let i = 0; i < 8; i++) {
        const issued = ca.signConnectorCsr(csrPem, ids);
        const x509 = new X509Certificate(issued.certPem);
        assert.match(issued.serial, /^[1-9a-f][0-9a-f]{0,31}$/);
        assert.equal(normalizeSerial(x509.serialNumber), issued.serial);
        const serialDer = forge.asn1.fromDer(x509.raw.toString('binary'));
        const tbs = (serialDer.value as forge.asn1.Asn1[])[0]?.value as forge.asn1.Asn1[];
        const serialBytes = Buffer.from(tbs[1]?.value as string, 'binary');
        assert.ok(((serialBytes[0] ?? 0) & 0x80) === 0, 'positive INTEGER');
        assert.ok(serialBytes.length <= 17);
        serials.add(issued.serial);
      }
      assert.equal(serials.size, 8);
    });

    it('returns the same serial that openssl prints', { skip: !HAS_OPENSSL && 'openssl not installed' }, async () => {
      const { csrPem } = await generateIdentity();
      const issued = ca.signConnectorCsr(csrPem, ids);
      const printed = openssl(['x509', '-noout', '-serial'], issued.certPem).toString().trim().replace(/^serial=/, '');
      assert.equal(normalizeSerial(printed), issued.serial);
    });

    it('never lets a certificate outlive the CA', async () => {
      const { csrPem } = await generateIdentity();
      const issued = ca.signConnectorCsr(csrPem, { ...ids, validityDays: 3650, notBefore: new Date(Date.now() + 9 * 365 * DAY) });
      assert.equal(issued.notAfter.getTime(), new Date(new X509Certificate(ca.certPem).validTo).getTime());
    });

    it('refuses connector and group ids that cannot be a plain CN or O', async () => {
      const { csrPem } = await generateIdentity();
      assertCode(() => ca.signConnectorCsr(csrPem, { connectorId: 'a,b', groupId: 'g' }), CaErrorCode.CA_BAD_REQUEST);
      assertCode(() => ca.signConnectorCsr(csrPem, { connectorId: 'a', groupId: '' }), CaErrorCode.CA_BAD_REQUEST);
      assertCode(() => ca.signConnectorCsr(csrPem, { ...ids, validityDays: 0 }), CaErrorCode.CA_BAD_REQUEST);
    });
  });

  describe('CSR refusals', () => {
    let goodCsr: string;
    before(async () => {
      goodCsr = (await generateIdentity()).csrPem;
    });

    it('ERR_CSR_MALFORMED: not PEM, bad base64, not DER, truncated, trailing bytes, two blocks', () => {
      const der = pemToDer(goodCsr);
      const bad = [
        '',
        'hello',
        '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n',
        derToPem(Buffer.from('this is not DER at all'), 'CERTIFICATE REQUEST'),
        derToPem(der.subarray(0, der.length - 10), 'CERTIFICATE REQUEST'),
        derToPem(Buffer.concat([der, Buffer.from([0, 0])]), 'CERTIFICATE REQUEST'),
        goodCsr + goodCsr,
        pki.ca.cert,
      ];
      for (const pem of bad) assertCode(() => ca.signConnectorCsr(pem, ids), CaErrorCode.CSR_MALFORMED);
      assertCode(() => ca.signConnectorCsr(42 as unknown as string, ids), CaErrorCode.CSR_MALFORMED);
    });

    it('accepts the legacy NEW CERTIFICATE REQUEST label', () => {
      const legacy = goodCsr.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST');
      assert.ok(ca.signConnectorCsr(legacy, ids).certPem);
    });

    it('ERR_CSR_WEAK_KEY: RSA 1024', () => {
      assertCode(() => ca.signConnectorCsr(craftCsr({ bits: 1024 }), ids), CaErrorCode.CSR_WEAK_KEY);
    });

    it('ERR_CSR_WEAK_KEY: an EC key', { skip: !HAS_OPENSSL && 'openssl not installed' }, () => {
      const args = ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=x'];
      const ecCsr = openssl(args, '').toString();
      assertCode(() => ca.signConnectorCsr(ecCsr, ids), CaErrorCode.CSR_WEAK_KEY);
    });

    it('ERR_CSR_BAD_SIGNATURE: a byte flipped in the signed request info', () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const der = pemToDer(craftCsr({ key: privateKey }));
      // Flip a low byte of the modulus: still a well-formed RSA 2048 key, no longer the one that signed.
      const modulus = Buffer.from(privateKey.export({ format: 'jwk' }).n as string, 'base64url');
      const at = der.indexOf(modulus);
      assert.ok(at > 0);
      const tampered = Buffer.from(der);
      tampered[at + modulus.length - 2] = (tampered[at + modulus.length - 2] ?? 0) ^ 0x01;
      assertCode(() => ca.signConnectorCsr(derToPem(tampered, 'CERTIFICATE REQUEST'), ids), CaErrorCode.CSR_BAD_SIGNATURE);
    });

    it('ERR_CSR_BAD_SIGNATURE: a byte flipped in the signature, and a SHA-1 signature', () => {
      const der = Buffer.from(pemToDer(goodCsr));
      der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
      assertCode(() => ca.signConnectorCsr(derToPem(der, 'CERTIFICATE REQUEST'), ids), CaErrorCode.CSR_BAD_SIGNATURE);
      assertCode(() => ca.signConnectorCsr(craftCsr({ md: 'sha1' }), ids), CaErrorCode.CSR_BAD_SIGNATURE);
    });

    it('ERR_CSR_SUBJECT: any CN, even the one the relay would assign', () => {
      const cn = (value: string): forge.pki.CertificateField[] => [{ name: 'commonName', value }];
      assertCode(() => ca.signConnectorCsr(craftCsr({ subject: cn('admin') }), ids), CaErrorCode.CSR_SUBJECT);
      assertCode(() => ca.signConnectorCsr(craftCsr({ subject: cn(ids.connectorId) }), ids), CaErrorCode.CSR_SUBJECT);
      assertCode(() => ca.signConnectorCsr(craftCsr({ subject: [{ name: 'organizationName', value: 'other-group' }] }), ids), CaErrorCode.CSR_SUBJECT);
    });

    it('ERR_CSR_SUBJECT: a requested subjectAltName', () => {
      const csr = craftCsr({ altNames: [{ type: 2, value: 'relay.example.com' }] });
      assertCode(() => ca.signConnectorCsr(csr, ids), CaErrorCode.CSR_SUBJECT);
      const ip = craftCsr({ altNames: [{ type: 7, ip: '10.0.0.1' }] });
      assertCode(() => ca.signConnectorCsr(ip, ids), CaErrorCode.CSR_SUBJECT);
    });

    it('checks the key before the subject', () => {
      assertCode(() => ca.signConnectorCsr(craftCsr({ bits: 1024, subject: [{ name: 'commonName', value: 'x' }] }), ids), CaErrorCode.CSR_WEAK_KEY);
    });
  });

  describe('server certificate', () => {
    it('carries DNS and IP SANs, serverAuth, and chains to the CA', () => {
      const issued = ca.issueServerCert(['relay.example.com', 'localhost', '127.0.0.1', '::1', '[fd00::1]']);
      const x509 = new X509Certificate(issued.certPem);
      assert.ok(x509.verify(new X509Certificate(ca.certPem).publicKey));
      assert.equal(x509.checkHost('relay.example.com'), 'relay.example.com');
      assert.equal(x509.checkHost('localhost'), 'localhost');
      assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
      assert.equal(x509.checkIP('::1'), '::1');
      assert.equal(x509.checkIP('fd00::1'), 'fd00::1');
      assert.equal(x509.checkHost('evil.example.com'), undefined);
      assert.deepEqual(x509.keyUsage, ['1.3.6.1.5.5.7.3.1']);
      assert.ok(issued.chainPem.endsWith(ca.certPem));
    });

    it('refuses an empty host list and a host that is neither name nor address', () => {
      assertCode(() => ca.issueServerCert([]), CaErrorCode.CA_BAD_REQUEST);
      assertCode(() => ca.issueServerCert(['bad host/']), CaErrorCode.CA_BAD_REQUEST);
    });
  });

  describe('TLS with issued certificates', () => {
    const serverOptions = (): object => {
      const server = pki.server(['localhost', '127.0.0.1', '::1']);
      return { key: server.key, cert: server.chain, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true };
    };

    it('a connector certificate from generateIdentity completes a mutual TLS handshake', async () => {
      const { keyPem, csrPem } = await generateIdentity();
      const issued = ca.signConnectorCsr(csrPem, ids);
      const result = await tlsHandshake(serverOptions(), { ca: pki.ca.cert, key: keyPem, cert: issued.certPem, servername: 'localhost' });
      assert.equal(result.accepted, true, String(result.serverError));
      assert.equal(result.authorized, true);
      const info = verifyClientCert(result.peer, ca.certificate);
      assert.equal(info.connectorId, ids.connectorId);
      assert.equal(info.groupId, ids.groupId);
      assert.equal(info.serial, issued.serial);
    });

    it('a client certificate from a foreign CA is rejected', async () => {
      const foreign = pki.client({ cn: 'con_foreign', ca: 'foreign' });
      const result = await tlsHandshake(serverOptions(), { ca: pki.ca.cert, key: foreign.key, cert: foreign.cert, servername: 'localhost' });
      assert.equal(result.accepted, false);
      assert.ok(result.serverError);
    });

    it('with rejectUnauthorized off (the registration listener), a foreign certificate gets through TLS and verifyClientCert refuses it', async () => {
      const foreign = pki.client({ cn: 'con_foreign', ca: 'foreign' });
      const result = await tlsHandshake({ ...serverOptions(), rejectUnauthorized: false }, { ca: pki.ca.cert, key: foreign.key, cert: foreign.cert, servername: 'localhost' });
      assert.equal(result.accepted, true);
      assert.equal(result.authorized, false);
      assertCode(() => verifyClientCert(result.peer, ca.certificate), CaErrorCode.CLIENT_CERT_UNTRUSTED);
    });

    it('a client without a certificate is rejected, and is MISSING when TLS lets it through', async () => {
      const strict = await tlsHandshake(serverOptions(), { ca: pki.ca.cert, servername: 'localhost' });
      assert.equal(strict.accepted, false);
      const lenient = await tlsHandshake({ ...serverOptions(), rejectUnauthorized: false }, { ca: pki.ca.cert, servername: 'localhost' });
      assert.equal(lenient.accepted, true);
      assertCode(() => verifyClientCert(lenient.peer, ca.certificate), CaErrorCode.CLIENT_CERT_MISSING);
    });

    it('an expired client certificate is rejected', async () => {
      const expired = pki.client({ cn: 'con_old', notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - DAY) });
      const result = await tlsHandshake(serverOptions(), { ca: pki.ca.cert, key: expired.key, cert: expired.cert, servername: 'localhost' });
      assert.equal(result.accepted, false);
      assert.ok(result.serverError);
    });
  });

  describe('verifyClientCert', () => {
    it('extracts id, group, normalized serial and validity from PEM and from a peer certificate', () => {
      const client = pki.client({ cn: 'con_7', group: 'grp_7' });
      const info = verifyClientCert(client.cert, ca.certPem);
      assert.equal(info.connectorId, 'con_7');
      assert.equal(info.groupId, 'grp_7');
      assert.equal(info.serial, client.serial);
      assert.ok(info.notAfter > info.notBefore);
      assert.deepEqual(clientCertInfo(new X509Certificate(client.cert)), info);
      assert.deepEqual(clientCertInfo({ raw: new X509Certificate(client.cert).raw } as never), info);
    });

    it('codes: missing, untrusted, expired, not yet valid, not a client certificate', () => {
      assertCode(() => verifyClientCert({} as never, ca.certificate), CaErrorCode.CLIENT_CERT_MISSING);
      assertCode(() => verifyClientCert(undefined, ca.certificate), CaErrorCode.CLIENT_CERT_MISSING);
      assertCode(() => verifyClientCert(pki.client({ cn: 'f', ca: 'foreign' }).cert, ca.certificate), CaErrorCode.CLIENT_CERT_UNTRUSTED);
      const expired = pki.client({ cn: 'e', notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) });
      assertCode(() => verifyClientCert(expired.cert, ca.certificate), CaErrorCode.CLIENT_CERT_EXPIRED);
      const future = pki.client({ cn: 'n', notBefore: new Date(Date.now() + DAY) });
      assertCode(() => verifyClientCert(future.cert, ca.certificate), CaErrorCode.CLIENT_CERT_NOT_YET_VALID);
      assertCode(() => verifyClientCert(pki.server(['localhost']).cert, ca.certificate), CaErrorCode.CLIENT_CERT_INVALID);
      assertCode(() => verifyClientCert('garbage', ca.certificate), CaErrorCode.CLIENT_CERT_INVALID);
    });
  });
});
