/** Local users of the relay's built-in sign-in. */
import { StoreConflictError, StoreNotFoundError } from './errors.ts';
import { newId } from './ids.ts';
import { toUser } from './rows.ts';
import { definedOnly, first, type SqlDriver } from './sql.ts';
import type { LocalUser, NewUser, UserPatch } from './types.ts';
import { requireName } from './validate.ts';

const USER = 'id, name, password_hash, group_names, disabled, created_at, updated_at';

export class SqlUsers {
  readonly #db: SqlDriver;
  readonly #now: () => number;

  constructor(db: SqlDriver, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  async createUser(user: NewUser): Promise<LocalUser> {
    requireName(user.name, 'user name');
    requireName(user.passwordHash, 'password hash');
    return this.#db.transaction(async (tx) => {
      if (await first(tx, 'SELECT 1 FROM users WHERE name = $1', [user.name])) {
        throw new StoreConflictError(`user "${user.name}" already exists; choose another name or update the existing user`);
      }
      const now = this.#now();
      const row = await first(
        tx,
        `INSERT INTO users (id, name, password_hash, group_names, disabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ${USER}`,
        [newId('usr'), user.name, user.passwordHash, JSON.stringify(user.groups ?? []), user.disabled ?? false, now],
      );
      const created = toUser(row!);
      tx.notify({ type: 'user-changed', userId: created.id });
      return created;
    });
  }

  async getUser(id: string): Promise<LocalUser | null> {
    const row = await first(this.#db, `SELECT ${USER} FROM users WHERE id = $1`, [id]);
    return row ? toUser(row) : null;
  }

  async getUserByName(name: string): Promise<LocalUser | null> {
    const row = await first(this.#db, `SELECT ${USER} FROM users WHERE name = $1`, [name]);
    return row ? toUser(row) : null;
  }

  async listUsers(): Promise<LocalUser[]> {
    return (await this.#db.all(`SELECT ${USER} FROM users ORDER BY name, id`)).map(toUser);
  }

  async updateUser(id: string, patch: UserPatch): Promise<LocalUser> {
    return this.#db.transaction(async (tx) => {
      const row = await first(tx, `SELECT ${USER} FROM users WHERE id = $1${tx.forUpdate}`, [id]);
      if (!row) throw new StoreNotFoundError(`user ${id} not found`);
      const user = { ...toUser(row), ...definedOnly(patch) };
      requireName(user.name, 'user name');
      requireName(user.passwordHash, 'password hash');
      if (await first(tx, 'SELECT 1 FROM users WHERE name = $1 AND id <> $2', [user.name, id])) {
        throw new StoreConflictError(`user "${user.name}" already exists; choose another name`);
      }
      const updated = await first(
        tx,
        `UPDATE users SET name = $2, password_hash = $3, group_names = $4, disabled = $5, updated_at = $6 WHERE id = $1 RETURNING ${USER}`,
        [id, user.name, user.passwordHash, JSON.stringify(user.groups), user.disabled, this.#now()],
      );
      tx.notify({ type: 'user-changed', userId: id });
      return toUser(updated!);
    });
  }

  async deleteUser(id: string): Promise<void> {
    await this.#db.transaction(async (tx) => {
      if ((await tx.run('DELETE FROM users WHERE id = $1', [id])) === 0) throw new StoreNotFoundError(`user ${id} not found`);
      tx.notify({ type: 'user-changed', userId: id });
    });
  }
}
