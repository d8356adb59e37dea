import { X509Certificate } from 'node:crypto';
import { DrawbridgeError } from '@drawbridge/shared';
import { IdentityErrorCode } from './errors.ts';

/** The default rotation age: 180 days. */
export const DEFAULT_ROTATION_AGE_MS = 180 * 24 * 60 * 60 * 1000;

function parse(certPem: string | X509Certificate): X509Certificate {
  if (certPem instanceof X509Certificate) return certPem;
  try {
    return new X509Certificate(certPem);
  } catch (err) {
    throw new DrawbridgeError(IdentityErrorCode.CERT_INVALID, 'certificate cannot be parsed', { cause: err });
  }
}

/**
 * Milliseconds since the certificate's notBefore (negative if it is not yet valid).
 *
 * @example certificateAge(state.cert, new Date()) / 86_400_000 // days
 */
export function certificateAge(certPem: string | X509Certificate, now: Date): number {
  return now.getTime() - new Date(parse(certPem).validFrom).getTime();
}

/**
 * Whether the connector should renew now: once the certificate is
 * `rotationAgeMs` old, or half-way through its lifetime if that comes
 * first, so a certificate issued shorter than twice the rotation age is
 * still renewed well before it expires.
 *
 * @example if (needsRotation(state.cert, new Date())) await renew();
 */
export function needsRotation(certPem: string | X509Certificate, now: Date, rotationAgeMs: number = DEFAULT_ROTATION_AGE_MS): boolean {
  const cert = parse(certPem);
  const lifetime = new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime();
  return certificateAge(cert, now) >= Math.min(rotationAgeMs, lifetime / 2);
}
