/** `/v1/groups`: connector groups, the unit applications are served by. */
import type { ConnectorGroup } from '../store/index.ts';
import { auditChange } from './audit-change.ts';
import type { AdminContext } from './context.ts';
import { AdminError, AdminErrorCode } from './errors.ts';
import { requireGroup } from './resolve.ts';
import type { Router } from './router.ts';
import { asName, iso, readObject, requireField } from './validate.ts';

export interface GroupView {
  id: string;
  name: string;
  createdAt: string | null;
  /** Applications served by the group. */
  apps: number;
  /** Connectors of the group that are not revoked. */
  connectors: number;
  /** Live tunnel connections of the group's connectors. */
  connections: number;
}

async function view(ctx: AdminContext, group: ConnectorGroup): Promise<GroupView> {
  const [apps, connectors] = await Promise.all([ctx.store.listApps({ groupId: group.id }), ctx.store.listConnectors({ groupId: group.id })]);
  const active = connectors.filter((c) => c.revokedAt === null);
  const connections = active.reduce((n, c) => n + ctx.registry.connections(c.id).length, 0);
  return { id: group.id, name: group.name, createdAt: iso(group.createdAt), apps: apps.length, connectors: active.length, connections };
}

export function groupRoutes(router: Router): void {
  router.add('GET', '/v1/groups', async ({ ctx }) => {
    const groups = await ctx.store.listGroups();
    return { status: 200, body: { groups: await Promise.all(groups.map((g) => view(ctx, g))) } };
  });

  router.add('POST', '/v1/groups', async ({ ctx, body }) => {
    const input = readObject(body, ['name']);
    const name = asName(requireField(input, 'name'), 'name');
    if (await ctx.store.getGroupByName(name)) {
      throw new AdminError(409, AdminErrorCode.nameTaken, `connector group "${name}" already exists`);
    }
    const group = await ctx.store.createGroup(name);
    await auditChange(ctx, 'group.created', { details: { groupId: group.id, name } });
    return { status: 201, body: await view(ctx, group) };
  });

  router.add('GET', '/v1/groups/:ref', async ({ ctx, params }) => {
    return { status: 200, body: await view(ctx, await requireGroup(ctx.store, params.ref!)) };
  });

  router.add('DELETE', '/v1/groups/:ref', async ({ ctx, params }) => {
    const group = await requireGroup(ctx.store, params.ref!);
    const current = await view(ctx, group);
    if (current.apps > 0 || current.connectors > 0) {
      throw new AdminError(
        409,
        AdminErrorCode.groupInUse,
        `connector group "${group.name}" still serves ${current.apps} application(s) and has ${current.connectors} active connector(s); move or remove the applications and revoke the connectors first`,
      );
    }
    await ctx.store.deleteGroup(group.id);
    await auditChange(ctx, 'group.removed', { details: { groupId: group.id, name: group.name } });
    return { status: 200, body: current };
  });
}
