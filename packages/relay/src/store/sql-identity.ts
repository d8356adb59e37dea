/**
 * Connector identity: groups, registration tokens, connectors and their
 * certificates. Registration is one transaction; the token decides in one
 * statement (see `consume`).
 */
import { ConnectorRevokedError, StoreConflictError, StoreNotFoundError, TokenRefusedError } from './errors.ts';
import { newId } from './ids.ts';
import { toCertificate, toConnector, toGroup, toToken } from './rows.ts';
import { first, type SqlDriver, type SqlExecutor, type SqlTransaction } from './sql.ts';
import type {
  CertificateLookup,
  ConsumeTokenResult,
  Connector,
  ConnectorCertificate,
  ConnectorGroup,
  IssuedCertificate,
  NewToken,
  RegisterConnectorInput,
  Registration,
  RegistrationToken,
} from './types.ts';
import { normalizeSerial, requireCount, requireName, requireTime, requireTokenHash } from './validate.ts';

const GROUP = 'id, name, created_at';
const CONNECTOR = 'id, name, group_id, version, created_at, last_seen_at, revoked_at';
const CERTIFICATE = 'serial, connector_id, not_before, not_after, revoked_at';
const TOKEN = 'id, group_id, expires_at, uses_left, created_at';

export class SqlIdentity {
  readonly #db: SqlDriver;
  readonly #now: () => number;

  constructor(db: SqlDriver, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  async createGroup(name: string): Promise<ConnectorGroup> {
    requireName(name, 'connector group name');
    return this.#db.transaction(async (tx) => {
      if (await first(tx, 'SELECT 1 FROM connector_groups WHERE name = $1', [name])) {
        throw new StoreConflictError(`connector group "${name}" already exists; choose another name`);
      }
      const row = await first(tx, `INSERT INTO connector_groups (id, name, created_at) VALUES ($1, $2, $3) RETURNING ${GROUP}`, [
        newId('grp'),
        name,
        this.#now(),
      ]);
      const group = toGroup(row!);
      tx.notify({ type: 'group-changed', groupId: group.id });
      return group;
    });
  }

  async ensureGroup(name: string): Promise<ConnectorGroup> {
    requireName(name, 'connector group name');
    return this.#db.transaction(async (tx) => {
      const inserted = await first(
        tx,
        `INSERT INTO connector_groups (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING ${GROUP}`,
        [newId('grp'), name, this.#now()],
      );
      if (inserted) {
        const group = toGroup(inserted);
        tx.notify({ type: 'group-changed', groupId: group.id });
        return group;
      }
      return toGroup((await first(tx, `SELECT ${GROUP} FROM connector_groups WHERE name = $1`, [name]))!);
    });
  }

  async getGroup(id: string): Promise<ConnectorGroup | null> {
    const row = await first(this.#db, `SELECT ${GROUP} FROM connector_groups WHERE id = $1`, [id]);
    return row ? toGroup(row) : null;
  }

  async getGroupByName(name: string): Promise<ConnectorGroup | null> {
    const row = await first(this.#db, `SELECT ${GROUP} FROM connector_groups WHERE name = $1`, [name]);
    return row ? toGroup(row) : null;
  }

  async listGroups(): Promise<ConnectorGroup[]> {
    return (await this.#db.all(`SELECT ${GROUP} FROM connector_groups ORDER BY name, id`)).map(toGroup);
  }

  async deleteGroup(id: string): Promise<void> {
    await this.#db.transaction(async (tx) => {
      // Locking the group row makes concurrent registrations into it wait (their
      // foreign key check needs a share lock on it), so the counts below hold.
      const row = await first(tx, `SELECT name FROM connector_groups WHERE id = $1${tx.forUpdate}`, [id]);
      if (!row) throw new StoreNotFoundError(`connector group ${id} not found`);
      const name = String(row.name);
      const apps = await first(tx, 'SELECT count(*) AS n FROM apps WHERE group_id = $1', [id]);
      if (Number(apps!.n) > 0) {
        throw new StoreConflictError(
          `connector group "${name}" still serves ${Number(apps!.n)} application(s); move them to another group or remove them first`,
        );
      }
      const active = await first(tx, 'SELECT count(*) AS n FROM connectors WHERE group_id = $1 AND revoked_at IS NULL', [id]);
      if (Number(active!.n) > 0) {
        throw new StoreConflictError(
          `connector group "${name}" still has ${Number(active!.n)} active connector(s); revoke them first with \`drawbridge-relay connector revoke ID\``,
        );
      }
      await tx.run('DELETE FROM connector_groups WHERE id = $1', [id]);
      tx.notify({ type: 'group-changed', groupId: id });
    });
  }

  async createToken(token: NewToken): Promise<RegistrationToken> {
    requireTokenHash(token.tokenHash);
    requireTime(token.expiresAt, 'token expiry');
    requireCount(token.uses, 'token uses', 1);
    return this.#db.transaction(async (tx) => {
      if (!(await first(tx, 'SELECT 1 FROM connector_groups WHERE id = $1', [token.groupId]))) {
        throw new StoreNotFoundError(`connector group ${token.groupId} not found; create it with \`drawbridge-relay group add NAME\``);
      }
      const row = await first(
        tx,
        `INSERT INTO registration_tokens (id, token_hash, group_id, expires_at, uses_left, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${TOKEN}`,
        [newId('tok'), token.tokenHash, token.groupId, token.expiresAt, token.uses, this.#now()],
      );
      return toToken(row!);
    });
  }

  async getToken(id: string): Promise<RegistrationToken | null> {
    const row = await first(this.#db, `SELECT ${TOKEN} FROM registration_tokens WHERE id = $1`, [id]);
    return row ? toToken(row) : null;
  }

  async listTokens(): Promise<RegistrationToken[]> {
    return (await this.#db.all(`SELECT ${TOKEN} FROM registration_tokens ORDER BY created_at, id`)).map(toToken);
  }

  async deleteToken(id: string): Promise<void> {
    if ((await this.#db.run('DELETE FROM registration_tokens WHERE id = $1', [id])) === 0) {
      throw new StoreNotFoundError(`registration token ${id} not found`);
    }
  }

  async consumeToken(tokenHash: string, now: number): Promise<ConsumeTokenResult> {
    return consume(this.#db, requireTokenHash(tokenHash), requireTime(now, 'now'));
  }

  async registerConnector<T extends IssuedCertificate>(
    input: RegisterConnectorInput,
    issue: (connector: Connector) => T | Promise<T>,
  ): Promise<Registration<T>> {
    requireTokenHash(input.tokenHash);
    requireTime(input.now, 'now');
    requireName(input.name, 'connector name');
    return this.#db.transaction(async (tx) => {
      const consumed = await consume(tx, input.tokenHash, input.now);
      if (!consumed.ok) throw new TokenRefusedError(consumed.reason);
      const groupId = consumed.token.groupId!;
      const row = await first(
        tx,
        `INSERT INTO connectors (id, name, group_id, version, created_at, last_seen_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $5, NULL) RETURNING ${CONNECTOR}`,
        [newId('con'), input.name, groupId, String(input.version), input.now],
      );
      const connector = toConnector(row!);
      const issued = await issue(connector);
      const certificate = await insertCertificate(tx, { ...issued, connectorId: connector.id });
      tx.notify({ type: 'connector-registered', connectorId: connector.id, groupId });
      return { connector, certificate, issued, token: consumed.token };
    });
  }

  async getConnector(id: string): Promise<Connector | null> {
    const row = await first(this.#db, `SELECT ${CONNECTOR} FROM connectors WHERE id = $1`, [id]);
    return row ? toConnector(row) : null;
  }

  async listConnectors(filter: { groupId?: string } = {}): Promise<Connector[]> {
    const rows =
      filter.groupId === undefined
        ? await this.#db.all(`SELECT ${CONNECTOR} FROM connectors ORDER BY created_at, id`)
        : await this.#db.all(`SELECT ${CONNECTOR} FROM connectors WHERE group_id = $1 ORDER BY created_at, id`, [filter.groupId]);
    return rows.map(toConnector);
  }

  async touchConnector(id: string, seen: { at: number; version?: string }): Promise<void> {
    requireTime(seen.at, 'last seen time');
    // Two relays may report out of order; last seen only moves forward.
    const changed = await this.#db.run(
      `UPDATE connectors SET
         last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < $2 THEN $2 ELSE last_seen_at END,
         version = COALESCE($3, version)
       WHERE id = $1`,
      [id, seen.at, seen.version ?? null],
    );
    if (changed === 0) throw new StoreNotFoundError(`connector ${id} not found`);
  }

  async revokeConnector(id: string, at: number): Promise<Connector> {
    requireTime(at, 'revocation time');
    return this.#db.transaction(async (tx) => {
      const row = await first(tx, `UPDATE connectors SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING ${CONNECTOR}`, [
        id,
        at,
      ]);
      if (!row) throw new StoreNotFoundError(`connector ${id} not found; list connectors with \`drawbridge-relay connector list\``);
      const connector = toConnector(row);
      await tx.run('UPDATE connector_certificates SET revoked_at = COALESCE(revoked_at, $2) WHERE connector_id = $1', [id, at]);
      tx.notify({ type: 'connector-revoked', connectorId: id, groupId: connector.groupId });
      return connector;
    });
  }

  async addCertificate(certificate: IssuedCertificate & { connectorId: string }): Promise<ConnectorCertificate> {
    return this.#db.transaction(async (tx) => {
      // Locked so that a concurrent revocation either comes first (and we refuse)
      // or comes after (and revokes this certificate too).
      const row = await first(tx, `SELECT revoked_at FROM connectors WHERE id = $1${tx.forUpdate}`, [certificate.connectorId]);
      if (!row) throw new StoreNotFoundError(`connector ${certificate.connectorId} not found`);
      if (row.revoked_at !== null) {
        throw new ConnectorRevokedError(`connector ${certificate.connectorId} is revoked; register it again with a new token`);
      }
      return insertCertificate(tx, certificate);
    });
  }

  async lookupCertificate(serial: string): Promise<CertificateLookup | null> {
    const row = await first(
      this.#db,
      `SELECT c.serial, c.connector_id, c.not_before, c.not_after, c.revoked_at AS cert_revoked_at,
              n.id, n.name, n.group_id, n.version, n.created_at, n.last_seen_at, n.revoked_at
       FROM connector_certificates c JOIN connectors n ON n.id = c.connector_id
       WHERE c.serial = $1`,
      [normalizeSerial(serial)],
    );
    if (!row) return null;
    return { certificate: toCertificate({ ...row, revoked_at: row.cert_revoked_at }), connector: toConnector(row) };
  }

  async listCertificates(connectorId: string): Promise<ConnectorCertificate[]> {
    const rows = await this.#db.all(`SELECT ${CERTIFICATE} FROM connector_certificates WHERE connector_id = $1 ORDER BY not_before, serial`, [
      connectorId,
    ]);
    return rows.map(toCertificate);
  }

  async revokeCertificate(serial: string, at: number): Promise<ConnectorCertificate> {
    requireTime(at, 'revocation time');
    const normalized = normalizeSerial(serial);
    return this.#db.transaction(async (tx) => {
      const row = await first(
        tx,
        `UPDATE connector_certificates SET revoked_at = COALESCE(revoked_at, $2) WHERE serial = $1 RETURNING ${CERTIFICATE}`,
        [normalized, at],
      );
      if (!row) throw new StoreNotFoundError(`certificate with serial ${normalized} not found`);
      const certificate = toCertificate(row);
      tx.notify({ type: 'certificate-revoked', serial: certificate.serial, connectorId: certificate.connectorId });
      return certificate;
    });
  }
}

/**
 * One statement decides: of concurrent callers for the last use, exactly one
 * row update succeeds (PostgreSQL re-checks `uses_left > 0` after waiting on
 * the row lock). Only a refusal reads the token again, to say why.
 */
async function consume(db: SqlExecutor, tokenHash: string, now: number): Promise<ConsumeTokenResult> {
  const row = await first(
    db,
    `UPDATE registration_tokens SET uses_left = uses_left - 1
     WHERE token_hash = $1 AND uses_left > 0 AND expires_at > $2 AND group_id IS NOT NULL
     RETURNING ${TOKEN}`,
    [tokenHash, now],
  );
  if (row) return { ok: true, token: toToken(row) };
  const existing = await first(db, `SELECT ${TOKEN} FROM registration_tokens WHERE token_hash = $1`, [tokenHash]);
  if (!existing) return { ok: false, reason: 'unknown' };
  const token = toToken(existing);
  if (token.expiresAt <= now) return { ok: false, reason: 'expired' };
  if (token.usesLeft <= 0) return { ok: false, reason: 'used-up' };
  return { ok: false, reason: 'group-deleted' };
}

async function insertCertificate(
  tx: SqlTransaction,
  certificate: IssuedCertificate & { connectorId: string },
): Promise<ConnectorCertificate> {
  const serial = normalizeSerial(certificate.serial);
  requireTime(certificate.notBefore, 'certificate notBefore');
  requireTime(certificate.notAfter, 'certificate notAfter');
  if (await first(tx, 'SELECT 1 FROM connector_certificates WHERE serial = $1', [serial])) {
    throw new StoreConflictError(`a certificate with serial ${serial} is already recorded; serials must be unique (issue with random serials)`);
  }
  const row = await first(
    tx,
    `INSERT INTO connector_certificates (serial, connector_id, not_before, not_after, revoked_at)
     VALUES ($1, $2, $3, $4, NULL) RETURNING ${CERTIFICATE}`,
    [serial, certificate.connectorId, certificate.notBefore, certificate.notAfter],
  );
  return toCertificate(row!);
}
