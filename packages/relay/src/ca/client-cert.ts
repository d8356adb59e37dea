import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import forge from 'node-forge';
import { DrawbridgeError } from '@drawbridge/shared';
import { CaErrorCode } from './errors.ts';
import { normalizeSerial } from './serial.ts';

const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** What the relay needs from a connector's certificate. */
export interface ClientCertInfo {
  /** Subject CN, assigned at issue time. */
  connectorId: string;
  /** Subject O, assigned at issue time. */
  groupId: string;
  /** Lower-case hex without leading zeros, as returned by `signConnectorCsr`: look it up for revocation. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint, colon-separated upper-case hex as Node prints it (for logs). */
  fingerprint256: string;
}

/**
 * A peer certificate as the connector listener sees it: `socket.getPeerCertificate()`
 * (an empty object when the client sent none), a PEM string, DER bytes or an X509Certificate.
 */
export type ClientCertInput = PeerCertificate | X509Certificate | string | Uint8Array | null | undefined;

function fail(code: string, message: string, cause?: unknown): never {
  throw new DrawbridgeError(code, message, cause === undefined ? undefined : { cause });
}

function toX509(input: ClientCertInput): X509Certificate {
  if (input instanceof X509Certificate) return input;
  if (input === null || input === undefined) fail(CaErrorCode.CLIENT_CERT_MISSING, 'no client certificate was presented');
  try {
    if (typeof input === 'string') {
      if (input.trim() === '') fail(CaErrorCode.CLIENT_CERT_MISSING, 'no client certificate was presented');
      return new X509Certificate(input);
    }
    if (input instanceof Uint8Array) return new X509Certificate(input);
  } catch (err) {
    if (err instanceof DrawbridgeError) throw err;
    fail(CaErrorCode.CLIENT_CERT_INVALID, 'client certificate cannot be parsed', err);
  }
  // Node gives `{}` from getPeerCertificate() when the client sent no certificate.
  const raw = (input as { raw?: Buffer }).raw;
  if (!raw || raw.length === 0) fail(CaErrorCode.CLIENT_CERT_MISSING, 'no client certificate was presented');
  try {
    return new X509Certificate(raw);
  } catch (err) {
    fail(CaErrorCode.CLIENT_CERT_INVALID, 'client certificate cannot be parsed', err);
  }
}

function singleField(cert: forge.pki.Certificate, shortName: string): string | undefined {
  const values = cert.subject.attributes.filter((a) => a.shortName === shortName).map((a) => a.value as unknown);
  const [value] = values;
  return values.length === 1 && typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Reads connector id, group id, serial and validity from a certificate
 * without judging it. Use `verifyClientCert` on anything a peer sent.
 *
 * @example const { serial } = clientCertInfo(issued.certPem);
 */
export function clientCertInfo(input: ClientCertInput): ClientCertInfo {
  const x509 = toX509(input);
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromAsn1(forge.asn1.fromDer(x509.raw.toString('binary')));
  } catch (err) {
    fail(CaErrorCode.CLIENT_CERT_INVALID, 'client certificate is not an RSA connector certificate', err);
  }
  const connectorId = singleField(cert, 'CN');
  const groupId = singleField(cert, 'O');
  if (!connectorId || !groupId) {
    fail(CaErrorCode.CLIENT_CERT_INVALID, `client certificate subject "${x509.subject.replace(/\n/g, ', ')}" is not a connector identity (one CN and one O)`);
  }
  return {
    connectorId,
    groupId,
    serial: normalizeSerial(x509.serialNumber),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    fingerprint256: x509.fingerprint256,
  };
}

/**
 * Checks that a peer's certificate is a connector certificate issued by this
 * relay's CA and valid at `now`, and returns its identity. It does not know
 * about revocation: look `serial` up in the store next.
 *
 * Codes: CLIENT_CERT_MISSING, CLIENT_CERT_UNTRUSTED (not signed by `ca`),
 * CLIENT_CERT_EXPIRED, CLIENT_CERT_NOT_YET_VALID, CLIENT_CERT_INVALID
 * (unparseable, no clientAuth, or no CN/O).
 *
 * @example
 * const info = verifyClientCert(socket.getPeerCertificate(), ca.certificate);
 * if (await store.isRevoked(info.serial)) refuse();
 */
export function verifyClientCert(input: ClientCertInput, ca: X509Certificate | string, now: Date = new Date()): ClientCertInfo {
  const issuer = typeof ca === 'string' ? new X509Certificate(ca) : ca;
  const x509 = toX509(input);
  if (!x509.checkIssued(issuer) || !x509.verify(issuer.publicKey)) {
    fail(CaErrorCode.CLIENT_CERT_UNTRUSTED, `client certificate "${x509.subject.replace(/\n/g, ', ')}" was not issued by this relay's CA`);
  }
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (now > notAfter) fail(CaErrorCode.CLIENT_CERT_EXPIRED, `client certificate expired at ${notAfter.toISOString()}; the connector must register again`);
  if (now < notBefore) fail(CaErrorCode.CLIENT_CERT_NOT_YET_VALID, `client certificate is not valid before ${notBefore.toISOString()}; check the clocks`);
  if (!(x509.keyUsage ?? []).includes(OID_CLIENT_AUTH)) {
    fail(CaErrorCode.CLIENT_CERT_INVALID, 'certificate is not for client authentication (no clientAuth extended key usage)');
  }
  return clientCertInfo(x509);
}
