/**
 * Who may open a tunnel or call the connector API: a certificate the relay's
 * CA issued (checked by TLS), whose serial the store knows and neither the
 * certificate nor its connector is revoked. Checked on every upgrade, so a
 * revocation holds even for certificates that are still valid.
 */
import type { IncomingMessage } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import { DrawbridgeError } from '@drawbridge/shared';
import { clientCertInfo } from '../ca/index.ts';
import type { Store } from '../store/index.ts';
import type { ConnectorAuthenticator, ConnectorIdentity } from '../tunnel/connector-listener.ts';

export interface StoreAuthenticatorOptions {
  store: Store;
  now(): number;
  /** Called with every refusal, for the audit log. */
  onRefused?(code: string, detail: { serial?: string; connectorId?: string; address?: string }): void;
}

export function storeAuthenticator(opts: StoreAuthenticatorOptions): ConnectorAuthenticator {
  return {
    async authenticate(cert: PeerCertificate, req: IncomingMessage): Promise<ConnectorIdentity> {
      const address = req.socket.remoteAddress ?? undefined;
      const refuse = (code: string, message: string, detail: { serial?: string; connectorId?: string }): never => {
        opts.onRefused?.(code, { ...detail, ...(address ? { address } : {}) });
        throw new DrawbridgeError(code, message);
      };
      let info;
      try {
        info = clientCertInfo(cert);
      } catch {
        return refuse('ERR_CERT_SUBJECT', 'the client certificate does not name a connector', {});
      }
      const found = await opts.store.lookupCertificate(info.serial);
      if (!found || found.connector.id !== info.connectorId) {
        return refuse('ERR_CONNECTOR_UNKNOWN', 'this relay has no record of the connector certificate: register the connector again', { serial: info.serial, connectorId: info.connectorId });
      }
      if (found.connector.revokedAt !== null || found.certificate.revokedAt !== null) {
        return refuse('ERR_CERT_REVOKED', `connector ${found.connector.id} has been revoked: register it again with a new token if it should serve`, {
          serial: info.serial,
          connectorId: found.connector.id,
        });
      }
      return { connectorId: found.connector.id, connectorName: found.connector.name, groupId: found.connector.groupId, serial: info.serial };
    },
  };
}
