/**
 * The Store over a SqlDriver: one body of dialect-neutral SQL for SQLite and
 * PostgreSQL, split by subject (identity, apps, users, audit). Writes that
 * others must hear about run in a transaction and publish their ChangeEvent on
 * commit. Where two relays could race, either a single statement decides
 * (consumeToken, saveCa, ensureGroup, setSettingIfAbsent) or the rows are
 * locked first (`FOR UPDATE` on PostgreSQL; SQLite write transactions are
 * serial), and unique indexes remain the final word.
 */
import type { AppConfig } from '@drawbridge/shared';
import { StoreNotFoundError } from './errors.ts';
import { toCa } from './rows.ts';
import { SqlApps } from './sql-apps.ts';
import { SqlAuditLog } from './sql-audit.ts';
import { SqlIdentity } from './sql-identity.ts';
import { SqlUsers } from './sql-users.ts';
import { first, type SqlDriver } from './sql.ts';
import type {
  AppPatch,
  AuditEvent,
  AuditQuery,
  CaRecord,
  CertificateLookup,
  ChangeListener,
  ConsumeTokenResult,
  Connector,
  ConnectorCertificate,
  ConnectorGroup,
  IssuedCertificate,
  LocalUser,
  NewApp,
  NewAuditEvent,
  NewToken,
  NewUser,
  RegisterConnectorInput,
  Registration,
  RegistrationToken,
  Store,
  UserPatch,
} from './types.ts';
import { requireName } from './validate.ts';

export class SqlStore implements Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly #db: SqlDriver;
  readonly #now: () => number;
  readonly #identity: SqlIdentity;
  readonly #apps: SqlApps;
  readonly #users: SqlUsers;
  readonly #audit: SqlAuditLog;

  constructor(db: SqlDriver, now: () => number) {
    this.kind = db.kind;
    this.#db = db;
    this.#now = now;
    this.#identity = new SqlIdentity(db, now);
    this.#apps = new SqlApps(db, now);
    this.#users = new SqlUsers(db, now);
    this.#audit = new SqlAuditLog(db, now);
  }

  ping(): Promise<void> {
    return this.#db.ping();
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#db.subscribe(listener);
  }

  // --- CA ---------------------------------------------------------------

  async getCa(): Promise<CaRecord | null> {
    const row = await first(this.#db, 'SELECT key_pem, cert_pem, created_at FROM ca WHERE id = 1', []);
    return row ? toCa(row) : null;
  }

  async saveCa(ca: { keyPem: string; certPem: string }): Promise<CaRecord> {
    requireName(ca.keyPem, 'CA key');
    requireName(ca.certPem, 'CA certificate');
    // The loser of a first-start race inserts nothing and reads the winner's CA.
    await this.#db.run('INSERT INTO ca (id, key_pem, cert_pem, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING', [
      ca.keyPem,
      ca.certPem,
      this.#now(),
    ]);
    const stored = await this.getCa();
    if (!stored) throw new StoreNotFoundError('the CA vanished right after it was stored; is another process resetting the database?');
    return stored;
  }

  // --- connector identity -----------------------------------------------

  createGroup(name: string): Promise<ConnectorGroup> {
    return this.#identity.createGroup(name);
  }

  ensureGroup(name: string): Promise<ConnectorGroup> {
    return this.#identity.ensureGroup(name);
  }

  getGroup(id: string): Promise<ConnectorGroup | null> {
    return this.#identity.getGroup(id);
  }

  getGroupByName(name: string): Promise<ConnectorGroup | null> {
    return this.#identity.getGroupByName(name);
  }

  listGroups(): Promise<ConnectorGroup[]> {
    return this.#identity.listGroups();
  }

  deleteGroup(id: string): Promise<void> {
    return this.#identity.deleteGroup(id);
  }

  createToken(token: NewToken): Promise<RegistrationToken> {
    return this.#identity.createToken(token);
  }

  getToken(id: string): Promise<RegistrationToken | null> {
    return this.#identity.getToken(id);
  }

  listTokens(): Promise<RegistrationToken[]> {
    return this.#identity.listTokens();
  }

  deleteToken(id: string): Promise<void> {
    return this.#identity.deleteToken(id);
  }

  consumeToken(tokenHash: string, now: number): Promise<ConsumeTokenResult> {
    return this.#identity.consumeToken(tokenHash, now);
  }

  registerConnector<T extends IssuedCertificate>(
    input: RegisterConnectorInput,
    issue: (connector: Connector) => T | Promise<T>,
  ): Promise<Registration<T>> {
    return this.#identity.registerConnector(input, issue);
  }

  getConnector(id: string): Promise<Connector | null> {
    return this.#identity.getConnector(id);
  }

  listConnectors(filter?: { groupId?: string }): Promise<Connector[]> {
    return this.#identity.listConnectors(filter);
  }

  touchConnector(id: string, seen: { at: number; version?: string }): Promise<void> {
    return this.#identity.touchConnector(id, seen);
  }

  revokeConnector(id: string, at: number): Promise<Connector> {
    return this.#identity.revokeConnector(id, at);
  }

  addCertificate(certificate: IssuedCertificate & { connectorId: string }): Promise<ConnectorCertificate> {
    return this.#identity.addCertificate(certificate);
  }

  lookupCertificate(serial: string): Promise<CertificateLookup | null> {
    return this.#identity.lookupCertificate(serial);
  }

  listCertificates(connectorId: string): Promise<ConnectorCertificate[]> {
    return this.#identity.listCertificates(connectorId);
  }

  revokeCertificate(serial: string, at: number): Promise<ConnectorCertificate> {
    return this.#identity.revokeCertificate(serial, at);
  }

  // --- applications and users -------------------------------------------

  createApp(app: NewApp): Promise<AppConfig> {
    return this.#apps.createApp(app);
  }

  getApp(id: string): Promise<AppConfig | null> {
    return this.#apps.getApp(id);
  }

  getAppByName(name: string): Promise<AppConfig | null> {
    return this.#apps.getAppByName(name);
  }

  findAppByHost(host: string): Promise<AppConfig | null> {
    return this.#apps.findAppByHost(host);
  }

  listApps(filter?: { groupId?: string }): Promise<AppConfig[]> {
    return this.#apps.listApps(filter);
  }

  updateApp(id: string, patch: AppPatch): Promise<AppConfig> {
    return this.#apps.updateApp(id, patch);
  }

  deleteApp(id: string): Promise<void> {
    return this.#apps.deleteApp(id);
  }

  createUser(user: NewUser): Promise<LocalUser> {
    return this.#users.createUser(user);
  }

  getUser(id: string): Promise<LocalUser | null> {
    return this.#users.getUser(id);
  }

  getUserByName(name: string): Promise<LocalUser | null> {
    return this.#users.getUserByName(name);
  }

  listUsers(): Promise<LocalUser[]> {
    return this.#users.listUsers();
  }

  updateUser(id: string, patch: UserPatch): Promise<LocalUser> {
    return this.#users.updateUser(id, patch);
  }

  deleteUser(id: string): Promise<void> {
    return this.#users.deleteUser(id);
  }

  // --- audit and settings -----------------------------------------------

  appendAudit(event: NewAuditEvent): Promise<AuditEvent> {
    return this.#audit.append(event);
  }

  listAudit(query: AuditQuery = {}): Promise<AuditEvent[]> {
    return this.#audit.list(query);
  }

  pruneAudit(before: number): Promise<number> {
    return this.#audit.prune(before);
  }

  async getSetting(key: string): Promise<string | null> {
    const row = await first(this.#db, 'SELECT value FROM settings WHERE key = $1', [key]);
    return row ? String(row.value) : null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    requireName(key, 'setting key');
    await this.#db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [key, String(value), this.#now()],
      );
      tx.notify({ type: 'setting-changed', key });
    });
  }

  async setSettingIfAbsent(key: string, value: string): Promise<string> {
    requireName(key, 'setting key');
    return this.#db.transaction(async (tx) => {
      const inserted = await first(
        tx,
        'INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING RETURNING value',
        [key, String(value), this.#now()],
      );
      if (inserted) {
        tx.notify({ type: 'setting-changed', key });
        return String(inserted.value);
      }
      return String((await first(tx, 'SELECT value FROM settings WHERE key = $1', [key]))!.value);
    });
  }

  async listSettings(prefix: string): Promise<Array<{ key: string; value: string; updatedAt: number }>> {
    // substr, not LIKE: a prefix may contain `%` or `_`.
    const rows = await this.#db.all('SELECT key, value, updated_at FROM settings WHERE substr(key, 1, $1) = $2 ORDER BY key', [prefix.length, prefix]);
    return rows.map((r) => ({ key: String(r.key), value: String(r.value), updatedAt: Number(r.updated_at) }));
  }

  async recordSignInFailure(key: string, at: number): Promise<void> {
    await this.#db.run('INSERT INTO sign_in_failures (key, failed_at) VALUES ($1, $2)', [key, at]);
  }

  async signInFailures(key: string, since: number, limit: number): Promise<number[]> {
    const rows = await this.#db.all('SELECT failed_at FROM sign_in_failures WHERE key = $1 AND failed_at > $2 ORDER BY failed_at DESC LIMIT $3', [key, since, limit]);
    return rows.map((r) => Number(r.failed_at)).reverse();
  }

  async clearSignInFailures(key: string): Promise<void> {
    await this.#db.run('DELETE FROM sign_in_failures WHERE key = $1', [key]);
  }

  async pruneSignInFailures(before: number): Promise<number> {
    return this.#db.run('DELETE FROM sign_in_failures WHERE failed_at <= $1', [before]);
  }

  async deleteSetting(key: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const existed = (await tx.run('DELETE FROM settings WHERE key = $1', [key])) > 0;
      if (existed) tx.notify({ type: 'setting-changed', key });
      return existed;
    });
  }
}
