/**
 * The relay's certificate authority and the certificate of its connector
 * listener, set up at start. Where the CA lives:
 *   - `ca.certFile`/`ca.keyFile` when the operator supplies one;
 *   - SQLite (one relay): `ca.crt` and `ca.key` (0600) in the data dir;
 *   - PostgreSQL (several relays): in the store, so every relay signs with the
 *     same CA; the first relay to start creates it, the others load it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CertificateAuthority, openCaFiles } from '../ca/index.ts';
import type { Store } from '../store/index.ts';
import type { RelayConfig } from './config.ts';

export interface RelayPki {
  ca: CertificateAuthority;
  /** Certificate (chain) and key the connector listener serves. */
  connectorTls(): Promise<{ cert: string; key: string; notAfter: number }>;
}

async function loadCa(config: RelayConfig, store: Store, logger: Logger): Promise<CertificateAuthority> {
  if (config.ca.certFile && config.ca.keyFile) {
    const [cert, key] = await Promise.all([readFile(config.ca.certFile, 'utf8'), readFile(config.ca.keyFile, 'utf8')]);
    logger.info({ file: config.ca.certFile }, 'using the operator-supplied CA');
    return CertificateAuthority.load(cert, key);
  }
  if (store.kind === 'sqlite') {
    return openCaFiles({ certPath: join(config.dataDir, 'ca.crt'), keyPath: join(config.dataDir, 'ca.key'), create: true });
  }
  const existing = await store.getCa();
  if (existing) return CertificateAuthority.load(existing.certPem, existing.keyPem);
  const created = CertificateAuthority.create();
  // Two relays starting at once: the store keeps the first CA and both use it.
  const saved = await store.saveCa({ certPem: created.chainPem, keyPem: created.keyPem });
  logger.info('created the connector CA in the shared store');
  return CertificateAuthority.load(saved.certPem, saved.keyPem);
}

export async function setupPki(config: RelayConfig, store: Store, logger: Logger): Promise<RelayPki> {
  const ca = await loadCa(config, store, logger);
  return {
    ca,
    async connectorTls() {
      if (config.connector.tlsCertFile && config.connector.tlsKeyFile) {
        const [cert, key] = await Promise.all([readFile(config.connector.tlsCertFile, 'utf8'), readFile(config.connector.tlsKeyFile, 'utf8')]);
        return { cert, key, notAfter: Number.MAX_SAFE_INTEGER };
      }
      // Issued afresh at each start (and renewed by the relay well before expiry):
      // nothing to keep on disk, and host changes take effect on restart.
      const issued = ca.issueServerCert(config.connector.hosts, { validityDays: 90 });
      return { cert: issued.chainPem, key: issued.keyPem, notAfter: issued.notAfter.getTime() };
    },
  };
}
