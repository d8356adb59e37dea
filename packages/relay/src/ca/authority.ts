import { createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP as isIpAddress } from 'node:net';
import forge from 'node-forge';
import { DrawbridgeError } from '@drawbridge/shared';
import { parseConnectorCsr } from './csr.ts';
import { CaErrorCode } from './errors.ts';
import { pin } from './pin.ts';
import { normalizeSerial, randomSerial } from './serial.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates the relay issues start this much in the past, so a peer whose clock lags a little still accepts them. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
/** Connector and group ids go into CN and O: short, printable, no separators a DN parser could trip on. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$/;

/** Names are UTF8String (forge defaults to PrintableString, which forbids `_` and `@`); its typings mistype the field. */
const UTF8 = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;

/** forge has these, its typings do not. */
const pki = forge.pki as typeof forge.pki & {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
};

export interface CreateCaOptions {
  /** Subject CN of the CA. Default `Drawbridge connector CA`. */
  commonName?: string;
  /** RSA modulus size. Default 3072. */
  keyBits?: number;
  /** Default 10. */
  validityYears?: number;
  now?: Date;
}

export interface ServerCertOptions {
  /** Default 365. */
  validityDays?: number;
  now?: Date;
}

export interface ServerCertificate {
  /** The server certificate alone. */
  certPem: string;
  /** Server certificate followed by the CA chain: serve this, so a pinning connector sees the CA. */
  chainPem: string;
  keyPem: string;
  serial: string;
  notAfter: Date;
}

export interface SignCsrOptions {
  /** Becomes the subject CN. */
  connectorId: string;
  /** Becomes the subject O. */
  groupId: string;
  /** Default: now minus five minutes of clock skew allowance. */
  notBefore?: Date;
  /** Default 365; the connector rotates at 180. Ignored when notAfter is given. */
  validityDays?: number;
  /** Overrides validityDays (tests use it to make an expired certificate). */
  notAfter?: Date;
  now?: Date;
}

export interface IssuedCertificate {
  certPem: string;
  /** The CA certificate chain to hand back with it (registration and renewal responses). */
  caChainPem: string;
  /** Lower-case hex without leading zeros; what the store records and revokes by. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

function fail(code: string, message: string, cause?: unknown): never {
  throw new DrawbridgeError(code, message, cause === undefined ? undefined : { cause });
}

function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Signs with Node's crypto, not forge: the CA key stays in OpenSSL's
 * constant-time RSA instead of forge's JavaScript big-integer code, and the
 * key need not be converted.
 */
function signWith(cert: forge.pki.Certificate, key: KeyObject): string {
  cert.signatureOid = OID_SHA256_WITH_RSA;
  cert.siginfo.algorithmOid = OID_SHA256_WITH_RSA;
  const tbs = pki.getTBSCertificate(cert);
  cert.tbsCertificate = tbs;
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  cert.signature = sign('sha256', tbsDer, key).toString('binary');
  return pki.certificateToPem(cert);
}

function truncateToSecond(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

function checkValidityDays(days: number, what: string): void {
  if (!Number.isFinite(days) || days <= 0 || days > 3650) {
    fail(CaErrorCode.CA_BAD_REQUEST, `${what} validity must be between 0 and 3650 days, got ${days}`);
  }
}

/**
 * The relay's certificate authority for connectors. It holds the CA key in
 * memory; persisting it is the job of `ca-files.ts`.
 *
 * @example
 * const ca = CertificateAuthority.create();
 * const { certPem, serial } = ca.signConnectorCsr(csrPem, { connectorId: 'c1', groupId: 'g1' });
 */
export class CertificateAuthority {
  /** The signing CA certificate. */
  readonly certPem: string;
  /** The signing CA certificate followed by any issuers the operator supplied. */
  readonly chainPem: string;
  /** PKCS#8 PEM. Secret: write it with mode 0600 and never log it. */
  readonly keyPem: string;
  /** `sha256:<hex>` of the CA's SubjectPublicKeyInfo. */
  readonly pin: string;
  readonly certificate: X509Certificate;
  readonly #key: KeyObject;
  readonly #forgeCert: forge.pki.Certificate;
  readonly #keyIdentifier: string;

  private constructor(chainPem: string, key: KeyObject) {
    const [first] = splitPemCertificates(chainPem);
    if (!first) fail(CaErrorCode.CA_INVALID, 'CA certificate file holds no PEM certificate');
    this.certPem = `${first.trim()}\n`;
    this.chainPem = splitPemCertificates(chainPem).map((c) => `${c.trim()}\n`).join('');
    this.keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
    this.#key = key;
    try {
      this.certificate = new X509Certificate(this.certPem);
      this.#forgeCert = pki.certificateFromPem(this.certPem);
    } catch (err) {
      fail(CaErrorCode.CA_INVALID, 'CA certificate cannot be parsed (it must be an RSA certificate in PEM)', err);
    }
    this.pin = pin(this.certificate);
    const ski: { subjectKeyIdentifier?: string } | undefined = this.#forgeCert.getExtension('subjectKeyIdentifier');
    this.#keyIdentifier = ski?.subjectKeyIdentifier
      ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
      : this.#forgeCert.generateSubjectKeyIdentifier().getBytes();
  }

  /** A new self-signed CA: RSA (3072 bits by default), 10 years, basicConstraints CA, keyCertSign. */
  static create(options: CreateCaOptions = {}): CertificateAuthority {
    const now = options.now ?? new Date();
    const keyBits = options.keyBits ?? 3072;
    if (!Number.isInteger(keyBits) || keyBits < 2048) fail(CaErrorCode.CA_BAD_REQUEST, `CA key must be RSA of at least 2048 bits, got ${keyBits}`);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: keyBits });
    const cert = pki.createCertificate();
    cert.publicKey = pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
    cert.serialNumber = randomSerial().derHex;
    cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
    cert.validity.notAfter = new Date(now);
    cert.validity.notAfter.setUTCFullYear(now.getUTCFullYear() + (options.validityYears ?? 10));
    const subject = [
      { name: 'commonName', value: options.commonName ?? 'Drawbridge connector CA', valueTagClass: UTF8 },
      { name: 'organizationName', value: 'Drawbridge', valueTagClass: UTF8 },
    ];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    return new CertificateAuthority(signWith(cert, privateKey), privateKey);
  }

  /**
   * Loads an operator-supplied CA. `certPem` may carry the CA's own issuers
   * after it; they are handed to connectors as the chain. Refuses
   * (CA_INVALID) a certificate that is not a CA, a key that does not match,
   * or a key that is not RSA; refuses (CA_EXPIRED) a CA outside its validity.
   */
  static load(certPem: string, keyPem: string, now: Date = new Date()): CertificateAuthority {
    let key: KeyObject;
    try {
      key = createPrivateKey(keyPem);
    } catch (err) {
      fail(CaErrorCode.CA_INVALID, 'CA key cannot be read (it must be an unencrypted PEM private key)', err);
    }
    if (key.asymmetricKeyType !== 'rsa') fail(CaErrorCode.CA_INVALID, `CA key is ${key.asymmetricKeyType ?? 'unknown'}; Drawbridge needs an RSA CA key`);
    const [first] = splitPemCertificates(certPem);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(first ?? '');
    } catch (err) {
      fail(CaErrorCode.CA_INVALID, 'CA certificate cannot be read (expected PEM)', err);
    }
    if (!cert.ca) fail(CaErrorCode.CA_INVALID, `certificate "${cert.subject}" is not a CA (basicConstraints CA:TRUE is missing)`);
    if (!cert.checkPrivateKey(key)) fail(CaErrorCode.CA_INVALID, 'CA key does not match the CA certificate');
    if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
      fail(CaErrorCode.CA_EXPIRED, `CA certificate is valid from ${cert.validFrom} to ${cert.validTo}; replace it`);
    }
    return new CertificateAuthority(certPem, key);
  }

  get notAfter(): Date {
    return new Date(this.certificate.validTo);
  }

  /**
   * A server certificate for the connector listener. `hosts` are DNS names
   * and IP addresses (v4 or v6) that connectors dial; each becomes a SAN.
   *
   * @example ca.issueServerCert(['relay.example.com', '203.0.113.7'])
   */
  issueServerCert(hosts: readonly string[], options: ServerCertOptions = {}): ServerCertificate {
    if (hosts.length === 0) fail(CaErrorCode.CA_BAD_REQUEST, 'server certificate needs at least one host name or IP address');
    const validityDays = options.validityDays ?? 365;
    checkValidityDays(validityDays, 'server certificate');
    const now = options.now ?? new Date();
    const altNames = hosts.map((host) => {
      const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
      if (isIpAddress(bare)) return { type: 7, ip: bare };
      if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(bare)) {
        fail(CaErrorCode.CA_BAD_REQUEST, `"${host}" is neither a DNS name nor an IP address`);
      }
      return { type: 2, value: bare.toLowerCase() };
    });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cert = this.#newCertificate(pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string), now, addDays(now, validityDays));
    const first = hosts[0] ?? '';
    cert.setSubject(first.length <= 64 ? [{ name: 'commonName', value: first, valueTagClass: UTF8 }] : []);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames, critical: first.length > 64 },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.#keyIdentifier },
    ]);
    const certPem = signWith(cert, this.#key);
    return {
      certPem,
      chainPem: certPem + this.chainPem,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      serial: normalizeSerialOf(cert),
      notAfter: cert.validity.notAfter,
    };
  }

  /**
   * Signs a connector's CSR after checking it (see `parseConnectorCsr` for
   * the refusals and their codes). The subject is assigned here: CN =
   * connectorId, O = groupId. The certificate carries clientAuth and
   * digitalSignature only, a random 128-bit serial and a SHA-256 signature.
   *
   * @example
   * const issued = ca.signConnectorCsr(csrPem, { connectorId: 'con_1', groupId: 'grp_1' });
   * store.recordCertificate(issued.serial, issued.notAfter);
   */
  signConnectorCsr(csrPem: string, options: SignCsrOptions): IssuedCertificate {
    for (const [what, value] of [['connector id', options.connectorId], ['group id', options.groupId]] as const) {
      if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
        fail(CaErrorCode.CA_BAD_REQUEST, `${what} ${JSON.stringify(value)} must be 1-64 characters of letters, digits and . _ : @ -`);
      }
    }
    const csr = parseConnectorCsr(csrPem);
    const now = options.now ?? new Date();
    const notBefore = options.notBefore ?? new Date(now.getTime() - CLOCK_SKEW_MS);
    let notAfter: Date;
    if (options.notAfter) {
      notAfter = options.notAfter;
    } else {
      const validityDays = options.validityDays ?? 365;
      checkValidityDays(validityDays, 'connector certificate');
      notAfter = addDays(options.notBefore ?? now, validityDays);
    }
    if (!(notAfter > notBefore)) fail(CaErrorCode.CA_BAD_REQUEST, 'certificate notAfter must be later than notBefore');
    if (now > this.notAfter) fail(CaErrorCode.CA_EXPIRED, `CA certificate expired on ${this.certificate.validTo}; replace it`);
    // A certificate cannot outlive the CA that vouches for it.
    if (notAfter > this.notAfter) notAfter = this.notAfter;

    const cert = this.#newCertificate(csr.forgePublicKey, notBefore, notAfter);
    cert.setSubject([
      { name: 'commonName', value: options.connectorId, valueTagClass: UTF8 },
      { name: 'organizationName', value: options.groupId, valueTagClass: UTF8 },
    ]);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.#keyIdentifier },
    ]);
    return {
      certPem: signWith(cert, this.#key),
      caChainPem: this.chainPem,
      serial: normalizeSerialOf(cert),
      notBefore: cert.validity.notBefore,
      notAfter: cert.validity.notAfter,
    };
  }

  #newCertificate(publicKey: forge.pki.PublicKey, notBefore: Date, notAfter: Date): forge.pki.Certificate {
    const cert = pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = randomSerial().derHex;
    // Whole seconds, as the certificate stores them, so what we return is what the peer will see.
    cert.validity.notBefore = truncateToSecond(notBefore);
    cert.validity.notAfter = truncateToSecond(notAfter);
    cert.setIssuer(this.#forgeCert.subject.attributes);
    return cert;
  }
}

function normalizeSerialOf(cert: forge.pki.Certificate): string {
  return normalizeSerial(cert.serialNumber);
}
