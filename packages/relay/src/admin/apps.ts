/** `/v1/apps`: published applications. Connectors are told of changes by the store's change events. */
import type { AppConfig } from '@drawbridge/shared';
import { readAppPatch, readNewApp } from './app-input.ts';
import { auditChange } from './audit-change.ts';
import { groupNames, requireApp } from './resolve.ts';
import type { Router } from './router.ts';

export type AppView = AppConfig & { groupName: string | null };

function view(app: AppConfig, names: Map<string, string>): AppView {
  return { ...app, groupName: names.get(app.group) ?? null };
}

export function appRoutes(router: Router): void {
  router.add('GET', '/v1/apps', async ({ ctx }) => {
    const [apps, names] = await Promise.all([ctx.store.listApps(), groupNames(ctx.store)]);
    return { status: 200, body: { apps: apps.map((a) => view(a, names)) } };
  });

  router.add('POST', '/v1/apps', async ({ ctx, body }) => {
    const app = await ctx.store.createApp(await readNewApp(ctx.store, body));
    await auditChange(ctx, 'app.created', { app: app.id, details: { name: app.name, externalHost: app.externalHost, group: app.group } });
    return { status: 201, body: view(app, await groupNames(ctx.store)) };
  });

  router.add('GET', '/v1/apps/:ref', async ({ ctx, params }) => {
    return { status: 200, body: view(await requireApp(ctx.store, params.ref!), await groupNames(ctx.store)) };
  });

  router.add('PATCH', '/v1/apps/:ref', async ({ ctx, params, body }) => {
    const current = await requireApp(ctx.store, params.ref!);
    const patch = await readAppPatch(ctx.store, body, current);
    const app = await ctx.store.updateApp(current.id, patch);
    await auditChange(ctx, 'app.updated', { app: app.id, details: { name: app.name, fields: Object.keys(patch) } });
    return { status: 200, body: view(app, await groupNames(ctx.store)) };
  });

  router.add('DELETE', '/v1/apps/:ref', async ({ ctx, params }) => {
    const app = await requireApp(ctx.store, params.ref!);
    const names = await groupNames(ctx.store);
    await ctx.store.deleteApp(app.id);
    await auditChange(ctx, 'app.removed', { app: app.id, details: { name: app.name, externalHost: app.externalHost } });
    return { status: 200, body: view(app, names) };
  });
}
