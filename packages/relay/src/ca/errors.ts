/**
 * Stable codes of the certificate authority. Callers (the registration and
 * renewal handlers, the connector listener) map these to responses; tests match
 * on them. Messages are written for the operator reading the relay's log.
 */
export const CaErrorCode = {
  /** The CSR is not a PEM/DER PKCS#10 request. */
  CSR_MALFORMED: 'ERR_CSR_MALFORMED',
  /** The CSR's key is not RSA, or is RSA under 2048 bits. */
  CSR_WEAK_KEY: 'ERR_CSR_WEAK_KEY',
  /** The CSR's signature does not verify with its own key (or uses a refused algorithm). */
  CSR_BAD_SIGNATURE: 'ERR_CSR_BAD_SIGNATURE',
  /** The CSR names a subject or subjectAltName; the relay assigns identity. */
  CSR_SUBJECT: 'ERR_CSR_SUBJECT',
  /** Issue options out of range (validity, ids). */
  CA_BAD_REQUEST: 'ERR_CA_BAD_REQUEST',
  /** The operator-supplied CA certificate or key cannot be used. */
  CA_INVALID: 'ERR_CA_INVALID',
  /** The CA certificate is outside its validity period. */
  CA_EXPIRED: 'ERR_CA_EXPIRED',
  /** The peer presented no client certificate. */
  CLIENT_CERT_MISSING: 'ERR_CLIENT_CERT_MISSING',
  /** The client certificate was not issued by this relay's CA. */
  CLIENT_CERT_UNTRUSTED: 'ERR_CLIENT_CERT_UNTRUSTED',
  /** The client certificate's notAfter has passed. */
  CLIENT_CERT_EXPIRED: 'ERR_CLIENT_CERT_EXPIRED',
  /** The client certificate's notBefore is in the future. */
  CLIENT_CERT_NOT_YET_VALID: 'ERR_CLIENT_CERT_NOT_YET_VALID',
  /** Issued by this CA but not a connector certificate (no CN/O or no clientAuth). */
  CLIENT_CERT_INVALID: 'ERR_CLIENT_CERT_INVALID',
} as const;

export type CaErrorCode = (typeof CaErrorCode)[keyof typeof CaErrorCode];
