/**
 * What the admin API needs from the running relay. The serve composition
 * (server/serve.ts) builds it; tests build it from real parts (a SQLite store,
 * a TunnelRegistry) without starting the other listeners.
 */
import type { Logger } from 'pino';
import type { RelayConfig } from '../server/config.ts';
import type { NewAuditEvent, Store } from '../store/index.ts';
import type { TunnelRegistry } from '../tunnel/registry.ts';

export interface AdminContext {
  store: Store;
  config: RelayConfig;
  /** `sha256:<hex>` of the CA that issues connector certificates (printed by `token create`). */
  caPin: string;
  /** URL connectors dial (`https://relay.example.com:8443`). */
  connectorUrl: string;
  /** Live tunnel connections (connected connections per connector, last seen). */
  registry: TunnelRegistry;
  /** Records an audit event; never throws (failures are logged). */
  audit(event: NewAuditEvent): Promise<void>;
  now(): number;
  logger: Logger;
  /** Store reachable and listeners up: `/readyz`. */
  ready(): Promise<boolean>;
  /** Prometheus text exposition for `/metrics`. */
  metrics(): Promise<string> | string;
  /** The admin credential (`ensureAdminCredential(dataDir)`); `/v1` requests must carry it as a bearer token. */
  adminToken: string;
  /** Hashes a local user's password for the store; default `hashPassword` of auth/local-users.ts. */
  hashPassword?: (password: string) => Promise<string>;
}
