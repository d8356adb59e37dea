import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import type { PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import { DrawbridgeError } from '@drawbridge/shared';
import { IdentityErrorCode } from './errors.ts';

const PIN_PATTERN = /^sha256:([0-9a-f]{64})$/i;
const MAX_CHAIN = 10;

/**
 * The 32 digest bytes of a `sha256:<hex>` pin. Throws PIN_INVALID otherwise,
 * so a mistyped `--ca-pin` fails at start, not at the first handshake.
 */
export function parsePin(pin: string): Buffer {
  const match = typeof pin === 'string' ? PIN_PATTERN.exec(pin.trim()) : null;
  if (!match?.[1]) throw new DrawbridgeError(IdentityErrorCode.PIN_INVALID, 'CA pin must be "sha256:" followed by 64 hex digits, as printed by `drawbridge-relay token create`');
  return Buffer.from(match[1], 'hex');
}

function spkiDigest(cert: X509Certificate): Buffer {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest();
}

/**
 * The pin of a certificate: `sha256:` + hex SHA-256 of its SubjectPublicKeyInfo
 * DER. The relay computes the same (packages/relay/src/ca/pin.ts); the two
 * packages do not import each other.
 */
export function pinOf(cert: string | X509Certificate): string {
  return `sha256:${spkiDigest(typeof cert === 'string' ? new X509Certificate(cert) : cert).toString('hex')}`;
}

/** A TLS peer's chain, leaf first, from `getPeerCertificate(true)`. */
function chainOfPeer(peer: PeerCertificate | DetailedPeerCertificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let current: PeerCertificate | DetailedPeerCertificate | undefined = peer;
  const seen = new Set<string>();
  while (current?.raw && chain.length < MAX_CHAIN && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = (current as Partial<DetailedPeerCertificate>).issuerCertificate;
  }
  return chain;
}

function toChain(input: string | X509Certificate | readonly X509Certificate[] | PeerCertificate | DetailedPeerCertificate): X509Certificate[] {
  if (typeof input === 'string') {
    const blocks = input.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    return blocks.map((b) => new X509Certificate(b));
  }
  if (input instanceof X509Certificate) return [input];
  if (Array.isArray(input)) return [...(input as readonly X509Certificate[])];
  return chainOfPeer(input as PeerCertificate);
}

/**
 * Whether a TLS peer (or a CA certificate) matches `pin`. Given a chain (a
 * PEM bundle leaf first, or `socket.getPeerCertificate(true)`), it is true
 * only if some certificate in it has the pinned key AND every certificate
 * below it was issued and signed by the next one: a server cannot pass by
 * merely attaching the (public) CA certificate to an unrelated leaf. Digests
 * are compared in constant time. Validity dates and host name are not
 * checked here; the pin replaces the trust store, not the TLS checks.
 *
 * @example
 * const socket = tls.connect({ host, port, rejectUnauthorized: false });
 * await once(socket, 'secureConnect');
 * if (!pinMatches(socket.getPeerCertificate(true), caPin)) socket.destroy();
 */
export function pinMatches(
  peerCertChainOrCaPem: string | X509Certificate | readonly X509Certificate[] | PeerCertificate | DetailedPeerCertificate,
  pin: string,
): boolean {
  const expected = parsePin(pin);
  let chain: X509Certificate[];
  try {
    chain = toChain(peerCertChainOrCaPem);
  } catch {
    return false;
  }
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as X509Certificate;
    if (timingSafeEqual(spkiDigest(cert), expected)) return true;
    const issuer = chain[i + 1];
    if (!issuer || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return false;
  }
  return false;
}
