/**
 * `/v1/users`: local users of the relay's built-in sign-in. Passwords are
 * hashed here and never stored, logged, audited or returned.
 */
import { hashPassword } from '../auth/local-users.ts';
import type { LocalUser } from '../store/index.ts';
import { auditChange } from './audit-change.ts';
import type { AdminContext } from './context.ts';
import { AdminError, AdminErrorCode, invalid } from './errors.ts';
import { requireUser } from './resolve.ts';
import type { Router } from './router.ts';
import { asArray, asBoolean, asString, iso, readObject, requireField, type Input } from './validate.ts';

export const MIN_PASSWORD_LENGTH = 8;
/** Bounds the work of hashing a request's password. */
export const MAX_PASSWORD_LENGTH = 1024;

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$/;

export interface UserView {
  id: string;
  name: string;
  groups: string[];
  disabled: boolean;
  createdAt: string | null;
  updatedAt: string | null;
}

function view(user: LocalUser): UserView {
  return { id: user.id, name: user.name, groups: user.groups, disabled: user.disabled, createdAt: iso(user.createdAt), updatedAt: iso(user.updatedAt) };
}

function asUserName(value: unknown): string {
  const s = asString(value, 'name', 256);
  if (!USER_NAME.test(s)) throw invalid(AdminErrorCode.invalidName, `"name" must be 1 to 128 letters, digits or . _ @ + -, starting with a letter or digit`);
  return s;
}

function asGroups(value: unknown): string[] {
  const groups = asArray(value, 'groups', 256).map((g, i) => {
    if (typeof g !== 'string' || !GROUP_NAME.test(g)) throw invalid(AdminErrorCode.invalidName, `"groups[${i}]" must be 1 to 128 letters, digits or . _ @ : + -`);
    return g;
  });
  return [...new Set(groups)];
}

function asPassword(value: unknown): string {
  if (typeof value !== 'string' || value.length < MIN_PASSWORD_LENGTH || value.length > MAX_PASSWORD_LENGTH) {
    throw invalid(AdminErrorCode.invalidPassword, `"password" must be a string of ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`);
  }
  return value;
}

async function readPatch(ctx: AdminContext, input: Input): Promise<{ passwordHash?: string; groups?: string[]; disabled?: boolean }> {
  const out: { passwordHash?: string; groups?: string[]; disabled?: boolean } = {};
  if (input.password !== undefined) out.passwordHash = await (ctx.hashPassword ?? hashPassword)(asPassword(input.password));
  if (input.groups !== undefined) out.groups = asGroups(input.groups);
  if (input.disabled !== undefined) out.disabled = asBoolean(input.disabled, 'disabled');
  return out;
}

export function userRoutes(router: Router): void {
  router.add('GET', '/v1/users', async ({ ctx }) => ({ status: 200, body: { users: (await ctx.store.listUsers()).map(view) } }));

  router.add('POST', '/v1/users', async ({ ctx, body }) => {
    const input = readObject(body, ['name', 'password', 'groups', 'disabled']);
    const name = asUserName(requireField(input, 'name'));
    asPassword(requireField(input, 'password'));
    if (await ctx.store.getUserByName(name)) throw new AdminError(409, AdminErrorCode.nameTaken, `user "${name}" already exists`);
    const fields = await readPatch(ctx, input);
    const user = await ctx.store.createUser({ name, passwordHash: fields.passwordHash!, groups: fields.groups ?? [], disabled: fields.disabled ?? false });
    await auditChange(ctx, 'user.created', { details: { userId: user.id, name: user.name, groups: user.groups } });
    return { status: 201, body: view(user) };
  });

  router.add('GET', '/v1/users/:ref', async ({ ctx, params }) => ({ status: 200, body: view(await requireUser(ctx.store, params.ref!)) }));

  router.add('PATCH', '/v1/users/:ref', async ({ ctx, params, body }) => {
    const current = await requireUser(ctx.store, params.ref!);
    const input = readObject(body, ['password', 'groups', 'disabled']);
    if (Object.keys(input).length === 0) throw invalid(AdminErrorCode.missingField, 'nothing to change; send password, groups or disabled');
    const patch = await readPatch(ctx, input);
    const user = await ctx.store.updateUser(current.id, patch);
    await auditChange(ctx, 'user.updated', { details: { userId: user.id, name: user.name, fields: Object.keys(input) } });
    return { status: 200, body: view(user) };
  });

  router.add('DELETE', '/v1/users/:ref', async ({ ctx, params }) => {
    const user = await requireUser(ctx.store, params.ref!);
    await ctx.store.deleteUser(user.id);
    await auditChange(ctx, 'user.removed', { details: { userId: user.id, name: user.name } });
    return { status: 200, body: view(user) };
  });
}
