/**
 * Objects addressed in a path or a body by id or by name: `/v1/apps/wiki` and
 * `/v1/apps/app_k3j9…` both work. The id is tried first.
 */
import type { AppConfig } from '@drawbridge/shared';
import type { ConnectorGroup, LocalUser, Store } from '../store/index.ts';
import { AdminErrorCode, invalid, notFound } from './errors.ts';

export async function findGroup(store: Store, ref: string): Promise<ConnectorGroup | null> {
  return (await store.getGroup(ref)) ?? (await store.getGroupByName(ref));
}

/** A group addressed in the path: 404 when missing. */
export async function requireGroup(store: Store, ref: string): Promise<ConnectorGroup> {
  const group = await findGroup(store, ref);
  if (!group) throw notFound('connector group', ref, 'list groups with `drawbridge-relay group list`');
  return group;
}

/** A group named in a request body: 400 when missing (the request is wrong, not the URL). */
export async function groupOfInput(store: Store, ref: string, field: string): Promise<ConnectorGroup> {
  const group = await findGroup(store, ref);
  if (!group) {
    throw invalid(AdminErrorCode.unknownGroup, `"${field}": connector group "${ref}" does not exist; create it with \`drawbridge-relay group add ${ref}\` or list groups with \`drawbridge-relay group list\``);
  }
  return group;
}

export async function requireApp(store: Store, ref: string): Promise<AppConfig> {
  const app = (await store.getApp(ref)) ?? (await store.getAppByName(ref));
  if (!app) throw notFound('application', ref, 'list applications with `drawbridge-relay app list`');
  return app;
}

export async function requireUser(store: Store, ref: string): Promise<LocalUser> {
  const user = (await store.getUser(ref)) ?? (await store.getUserByName(ref));
  if (!user) throw notFound('user', ref, 'list users with `drawbridge-relay user list`');
  return user;
}

/** Group names by id, for views that show both. */
export async function groupNames(store: Store): Promise<Map<string, string>> {
  return new Map((await store.listGroups()).map((g) => [g.id, g.name]));
}
