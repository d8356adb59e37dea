/**
 * `/v1/tokens`: registration tokens. The secret is generated here and shown
 * once; the store keeps only its SHA-256.
 */
import { randomBytes } from 'node:crypto';
import { hashToken, type RegistrationToken } from '../store/index.ts';
import { auditChange } from './audit-change.ts';
import type { AdminContext } from './context.ts';
import { notFound } from './errors.ts';
import { groupNames, groupOfInput } from './resolve.ts';
import type { Router } from './router.ts';
import { asDuration, asInteger, asName, iso, readObject } from './validate.ts';

export const DEFAULT_TOKEN_GROUP = 'default';
export const DEFAULT_TOKEN_TTL_MS = 3_600_000;
const MIN_TTL_MS = 60_000;
const MAX_TTL_MS = 30 * 86_400_000;
const MAX_USES = 1000;
/** Prefix that makes a leaked token recognizable to people and secret scanners. */
export const TOKEN_PREFIX = 'dbt_';

export interface TokenView {
  id: string;
  /** Group name; `null` once the group was removed (the token is then refused). */
  group: string | null;
  groupId: string | null;
  expiresAt: string | null;
  usesLeft: number;
  createdAt: string | null;
  /** `active`, `expired`, `used-up` or `group-deleted`. */
  state: string;
}

function view(token: RegistrationToken, names: Map<string, string>, now: number): TokenView {
  const group = token.groupId === null ? null : (names.get(token.groupId) ?? null);
  const state = group === null ? 'group-deleted' : token.usesLeft <= 0 ? 'used-up' : token.expiresAt <= now ? 'expired' : 'active';
  return { id: token.id, group, groupId: token.groupId, expiresAt: iso(token.expiresAt), usesLeft: token.usesLeft, createdAt: iso(token.createdAt), state };
}

/** What `POST /v1/tokens` answers: the secret, once, and what a connector needs to register. */
export interface CreatedToken {
  id: string;
  token: string;
  caPin: string;
  expiresAt: string | null;
  usesLeft: number;
  group: string;
  groupId: string;
  relayUrl: string;
}

async function create(ctx: AdminContext, body: unknown): Promise<CreatedToken> {
  const input = readObject(body ?? {}, ['group', 'ttl', 'uses']);
  const ttl = input.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : asDuration(input.ttl, 'ttl', MIN_TTL_MS, MAX_TTL_MS);
  const uses = input.uses === undefined ? 1 : asInteger(input.uses, 'uses', 1, MAX_USES);
  const groupRef = input.group === undefined ? DEFAULT_TOKEN_GROUP : asName(input.group, 'group');
  // The default group exists on demand so a fresh relay needs one command to register a connector.
  const group = groupRef === DEFAULT_TOKEN_GROUP ? await ctx.store.ensureGroup(DEFAULT_TOKEN_GROUP) : await groupOfInput(ctx.store, groupRef, 'group');
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const token = await ctx.store.createToken({ tokenHash: hashToken(secret), groupId: group.id, expiresAt: ctx.now() + ttl, uses });
  await auditChange(ctx, 'token.created', { details: { tokenId: token.id, group: group.name, expiresAt: token.expiresAt, uses } });
  return {
    id: token.id,
    token: secret,
    caPin: ctx.caPin,
    expiresAt: iso(token.expiresAt),
    usesLeft: token.usesLeft,
    group: group.name,
    groupId: group.id,
    relayUrl: ctx.connectorUrl,
  };
}

export function tokenRoutes(router: Router): void {
  router.add('POST', '/v1/tokens', async ({ ctx, body }) => ({ status: 201, body: await create(ctx, body) }));

  router.add('GET', '/v1/tokens', async ({ ctx }) => {
    const [tokens, names] = await Promise.all([ctx.store.listTokens(), groupNames(ctx.store)]);
    const now = ctx.now();
    return { status: 200, body: { tokens: tokens.map((t) => view(t, names, now)) } };
  });

  router.add('DELETE', '/v1/tokens/:id', async ({ ctx, params }) => {
    const token = await ctx.store.getToken(params.id!);
    if (!token) throw notFound('registration token', params.id!, 'list tokens with `drawbridge-relay token list`');
    const current = view(token, await groupNames(ctx.store), ctx.now());
    await ctx.store.deleteToken(token.id);
    await auditChange(ctx, 'token.revoked', { details: { tokenId: token.id } });
    return { status: 200, body: current };
  });
}
