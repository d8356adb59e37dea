import { createHash, X509Certificate } from 'node:crypto';

/**
 * The pin of a CA certificate: `sha256:` + hex SHA-256 of its
 * SubjectPublicKeyInfo DER. It is what `token create` prints and what the
 * connector's `--ca-pin` compares; the same value as
 * `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`.
 * Pinning the key rather than the certificate keeps the pin stable if the CA
 * certificate is re-issued for the same key.
 *
 * @example pin(ca.certPem) // 'sha256:3f1c…'
 */
export function pin(caCertPem: string | X509Certificate): string {
  const cert = typeof caCertPem === 'string' ? new X509Certificate(caCertPem) : caCertPem;
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}
