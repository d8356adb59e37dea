/**
 * The relay's persistent store: the single source of truth for the CA,
 * connector identities, registration tokens, applications, local users, the
 * audit trail and small relay settings.
 *
 * Two implementations meet this interface: SQLite in the data dir (one relay)
 * and PostgreSQL (several relays on one database). All times are epoch
 * milliseconds. Getters return `null` for a missing object; updates, deletes
 * and revocations of a missing object throw `ERR_STORE_NOT_FOUND`.
 */
import type { AppConfig } from '@drawbridge/shared';

/** The relay's certificate authority for connectors; created once per deployment. */
export interface CaRecord {
  keyPem: string;
  certPem: string;
  createdAt: number;
}

export interface ConnectorGroup {
  /** `grp_…` */
  id: string;
  /** Unique. */
  name: string;
  createdAt: number;
}

export interface Connector {
  /** `con_…`; also the subject of its certificates. */
  id: string;
  /** What the operator called it (`--name`, by default the host name); not unique. */
  name: string;
  groupId: string;
  /** Software version the connector last reported. */
  version: string;
  createdAt: number;
  lastSeenAt: number | null;
  revokedAt: number | null;
}

export interface ConnectorCertificate {
  /** Lower-case hex without leading zeros or separators. */
  serial: string;
  connectorId: string;
  notBefore: number;
  notAfter: number;
  revokedAt: number | null;
}

/** What the relay needs on each tunnel upgrade: the certificate and its connector. */
export interface CertificateLookup {
  certificate: ConnectorCertificate;
  connector: Connector;
}

/** What the caller's issuer reports about a certificate it signed. */
export interface IssuedCertificate {
  serial: string;
  notBefore: number;
  notAfter: number;
}

export interface RegistrationToken {
  /** `tok_…`; the secret itself is never stored, only its SHA-256. */
  id: string;
  /** `null` once the token's group was removed. */
  groupId: string | null;
  expiresAt: number;
  usesLeft: number;
  createdAt: number;
}

export interface NewToken {
  /** Lower-case hex SHA-256 of the secret (see `hashToken`). */
  tokenHash: string;
  groupId: string;
  expiresAt: number;
  uses: number;
}

export type TokenRefusal = 'unknown' | 'expired' | 'used-up' | 'group-deleted';

export type ConsumeTokenResult = { ok: true; token: RegistrationToken } | { ok: false; reason: TokenRefusal };

export interface RegisterConnectorInput {
  tokenHash: string;
  /** Clock reading the token's expiry is checked against. */
  now: number;
  name: string;
  version: string;
}

export interface Registration<T extends IssuedCertificate> {
  connector: Connector;
  certificate: ConnectorCertificate;
  /** Whatever the issuer returned (typically with the certificate PEM). */
  issued: T;
  /** The token after this use. */
  token: RegistrationToken;
}

/** An application as created; the store assigns the id. */
export type NewApp = Omit<AppConfig, 'id'>;
export type AppPatch = Partial<NewApp>;

export interface LocalUser {
  /** `usr_…` */
  id: string;
  /** Unique sign-in name. */
  name: string;
  /** Encoded password hash (algorithm and parameters included); never the password. */
  passwordHash: string;
  groups: string[];
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface NewUser {
  name: string;
  passwordHash: string;
  groups?: string[];
  disabled?: boolean;
}

export type UserPatch = Partial<Pick<LocalUser, 'name' | 'passwordHash' | 'groups' | 'disabled'>>;

export interface AuditEvent {
  /** Increasing in commit order, so `afterId` never skips an event (see `listAudit`). */
  id: number;
  at: number;
  /** What happened, dotted (`connector.registered`, `user.signin`, `app.updated`). */
  type: string;
  /** Who did it: a user id, `admin`, a connector id; null when nobody is known. */
  actor: string | null;
  app: string | null;
  connector: string | null;
  /** Client address. */
  address: string | null;
  requestId: string | null;
  /** `success`, `failure`, `denied` … */
  outcome: string;
  details: Record<string, unknown>;
}

export interface NewAuditEvent {
  /** Defaults to the store's clock. */
  at?: number;
  type: string;
  actor?: string | null;
  app?: string | null;
  connector?: string | null;
  address?: string | null;
  requestId?: string | null;
  outcome: string;
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  /** Only events with a larger id (for `audit --follow`). */
  afterId?: number;
  /** Only events with a smaller id (paging backwards). */
  beforeId?: number;
  since?: number;
  until?: number;
  type?: string;
  actor?: string;
  app?: string;
  connector?: string;
  outcome?: string;
  requestId?: string;
  /** Default 100, at most 1000. */
  limit?: number;
  /** `asc` (default) oldest first; `desc` newest first. */
  order?: 'asc' | 'desc';
}

/**
 * A change another part of the relay (or another relay on the same
 * PostgreSQL) may need to react to. Delivered after the change is committed.
 */
export type ChangeEvent =
  /** An application of this connector group was created, changed or removed. */
  | { type: 'apps-changed'; groupId: string; appId: string }
  | { type: 'group-changed'; groupId: string }
  | { type: 'connector-registered'; connectorId: string; groupId: string }
  | { type: 'connector-revoked'; connectorId: string; groupId: string }
  | { type: 'certificate-revoked'; serial: string; connectorId: string }
  | { type: 'user-changed'; userId: string }
  | { type: 'setting-changed'; key: string }
  /** Notices may have been lost (the notification connection dropped): reload everything. */
  | { type: 'resync' };

export type ChangeListener = (event: ChangeEvent) => void;

export interface Store {
  /** `sqlite` or `postgres`. */
  readonly kind: 'sqlite' | 'postgres';

  /** Resolves when the database answers; throws `ERR_STORE_UNAVAILABLE` otherwise (for `/readyz`). */
  ping(): Promise<void>;
  /** Closes connections; pending calls finish first. */
  close(): Promise<void>;
  /** Listens to committed changes; returns the function that stops listening. */
  subscribe(listener: ChangeListener): () => void;

  getCa(): Promise<CaRecord | null>;
  /**
   * Stores the CA unless one exists, and returns the one stored. Two relays
   * racing on first start both get the same CA back; the loser discards its own.
   */
  saveCa(ca: { keyPem: string; certPem: string }): Promise<CaRecord>;

  /** Throws `ERR_STORE_CONFLICT` if the name is taken. */
  createGroup(name: string): Promise<ConnectorGroup>;
  /** The group of this name, created if absent (race-free). */
  ensureGroup(name: string): Promise<ConnectorGroup>;
  getGroup(id: string): Promise<ConnectorGroup | null>;
  getGroupByName(name: string): Promise<ConnectorGroup | null>;
  listGroups(): Promise<ConnectorGroup[]>;
  /**
   * Removes a group that no application and no active connector uses
   * (`ERR_STORE_CONFLICT` otherwise). Its revoked connectors go with it; its
   * tokens stay and are refused with `ERR_TOKEN_GROUP_DELETED`.
   */
  deleteGroup(id: string): Promise<void>;

  createToken(token: NewToken): Promise<RegistrationToken>;
  getToken(id: string): Promise<RegistrationToken | null>;
  listTokens(): Promise<RegistrationToken[]>;
  deleteToken(id: string): Promise<void>;
  /**
   * Uses a token once, atomically: of two relays racing for the last use,
   * exactly one gets `ok: true`.
   */
  consumeToken(tokenHash: string, now: number): Promise<ConsumeTokenResult>;

  /**
   * Registers a connector in one transaction: consumes the token, creates the
   * connector in the token's group, calls `issue` to sign its certificate and
   * records that certificate. If the token is refused (`TokenRefusedError`,
   * `ERR_TOKEN_*`) or `issue` throws, nothing is stored and the token keeps its use.
   *
   * @example
   * const { connector, issued } = await store.registerConnector(
   *   { tokenHash: hashToken(secret), now: Date.now(), name: 'web-1', version: '0.1.0' },
   *   (connector) => ca.sign(csr, connector.id),
   * );
   */
  registerConnector<T extends IssuedCertificate>(
    input: RegisterConnectorInput,
    issue: (connector: Connector) => T | Promise<T>,
  ): Promise<Registration<T>>;
  getConnector(id: string): Promise<Connector | null>;
  listConnectors(filter?: { groupId?: string }): Promise<Connector[]>;
  /** Records that the connector was seen (connect, config pull), and its version if given. */
  touchConnector(id: string, seen: { at: number; version?: string }): Promise<void>;
  /** Revokes the connector and all its certificates; revoking twice keeps the first time. */
  revokeConnector(id: string, at: number): Promise<Connector>;
  /** Records a renewed certificate; `ERR_CONNECTOR_REVOKED` for a revoked connector. */
  addCertificate(certificate: IssuedCertificate & { connectorId: string }): Promise<ConnectorCertificate>;
  /** The certificate of this serial and its connector, by primary key (every tunnel upgrade). */
  lookupCertificate(serial: string): Promise<CertificateLookup | null>;
  listCertificates(connectorId: string): Promise<ConnectorCertificate[]>;
  revokeCertificate(serial: string, at: number): Promise<ConnectorCertificate>;

  /** Throws `ERR_STORE_CONFLICT` if the name or the external host (any case) is taken. */
  createApp(app: NewApp): Promise<AppConfig>;
  getApp(id: string): Promise<AppConfig | null>;
  getAppByName(name: string): Promise<AppConfig | null>;
  /** The app published on this host, case-insensitively. */
  findAppByHost(host: string): Promise<AppConfig | null>;
  listApps(filter?: { groupId?: string }): Promise<AppConfig[]>;
  updateApp(id: string, patch: AppPatch): Promise<AppConfig>;
  deleteApp(id: string): Promise<void>;

  createUser(user: NewUser): Promise<LocalUser>;
  getUser(id: string): Promise<LocalUser | null>;
  getUserByName(name: string): Promise<LocalUser | null>;
  listUsers(): Promise<LocalUser[]>;
  updateUser(id: string, patch: UserPatch): Promise<LocalUser>;
  deleteUser(id: string): Promise<void>;

  appendAudit(event: NewAuditEvent): Promise<AuditEvent>;
  listAudit(query?: AuditQuery): Promise<AuditEvent[]>;
  /** Deletes events older than `before`; returns how many. */
  pruneAudit(before: number): Promise<number>;

  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;
  /** Stores the value unless the key exists; returns the stored value (race-free first-start secrets). */
  setSettingIfAbsent(key: string, value: string): Promise<string>;
  /** Returns whether the key existed. */
  deleteSetting(key: string): Promise<boolean>;
  /** Every setting whose key starts with `prefix` (relay presence records, for example). */
  listSettings(prefix: string): Promise<Array<{ key: string; value: string; updatedAt: number }>>;

  /** Records a failed sign-in under `key` (an opaque digest of a user name or an address). */
  recordSignInFailure(key: string, at: number): Promise<void>;
  /** The times of the latest `limit` failures under `key` after `since`, oldest first. */
  signInFailures(key: string, since: number, limit: number): Promise<number[]>;
  /** Forgets the failures under `key` (a successful sign-in). */
  clearSignInFailures(key: string): Promise<void>;
  /** Deletes failures at or before `before`; returns how many. */
  pruneSignInFailures(before: number): Promise<number>;
}
