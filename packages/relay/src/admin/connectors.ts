/**
 * `/v1/connectors`: registered connectors, their live connections and
 * certificates. Revocation is recorded in the store; the relay closes the
 * connector's tunnels when it hears the store's `connector-revoked` event.
 */
import type { Connector, ConnectorCertificate } from '../store/index.ts';
import { auditChange } from './audit-change.ts';
import type { AdminContext } from './context.ts';
import { notFound } from './errors.ts';
import { findGroup, groupNames } from './resolve.ts';
import type { Router } from './router.ts';
import { iso } from './validate.ts';

export interface ConnectorView {
  id: string;
  name: string;
  groupId: string;
  group: string | null;
  version: string;
  /** `connected`, `disconnected` or `revoked`. */
  status: string;
  /** Live tunnel connections to this relay. */
  connections: number;
  lastSeenAt: string | null;
  createdAt: string | null;
  revokedAt: string | null;
  /** Latest expiry of its certificates that are not revoked; `null` if none. */
  certificateExpiresAt: string | null;
}

async function view(ctx: AdminContext, connector: Connector, names: Map<string, string>, certificates?: ConnectorCertificate[]): Promise<ConnectorView> {
  const certs = certificates ?? (await ctx.store.listCertificates(connector.id));
  const valid = certs.filter((c) => c.revokedAt === null).map((c) => c.notAfter);
  const connections = ctx.registry.connections(connector.id).length;
  return {
    id: connector.id,
    name: connector.name,
    groupId: connector.groupId,
    group: names.get(connector.groupId) ?? null,
    version: connector.version,
    status: connector.revokedAt !== null ? 'revoked' : connections > 0 ? 'connected' : 'disconnected',
    connections,
    lastSeenAt: iso(connector.lastSeenAt),
    createdAt: iso(connector.createdAt),
    revokedAt: iso(connector.revokedAt),
    certificateExpiresAt: valid.length > 0 ? iso(Math.max(...valid)) : null,
  };
}

export interface ConnectorDetail extends ConnectorView {
  certificates: Array<{ serial: string; notBefore: string | null; notAfter: string | null; revokedAt: string | null }>;
  /** Live tunnel connections to this relay. */
  tunnels: Array<{ id: string; remoteAddress: string; connectedAt: string | null }>;
}

async function detail(ctx: AdminContext, connector: Connector): Promise<ConnectorDetail> {
  const certificates = await ctx.store.listCertificates(connector.id);
  return {
    ...(await view(ctx, connector, await groupNames(ctx.store), certificates)),
    certificates: certificates.map((c) => ({ serial: c.serial, notBefore: iso(c.notBefore), notAfter: iso(c.notAfter), revokedAt: iso(c.revokedAt) })),
    tunnels: ctx.registry.connections(connector.id).map((c) => ({ id: c.id, remoteAddress: c.remoteAddress, connectedAt: iso(c.connectedAt) })),
  };
}

async function requireConnector(ctx: AdminContext, id: string): Promise<Connector> {
  const connector = await ctx.store.getConnector(id);
  if (!connector) throw notFound('connector', id, 'list connectors with `drawbridge-relay connector list`');
  return connector;
}

export function connectorRoutes(router: Router): void {
  router.add('GET', '/v1/connectors', async ({ ctx, query }) => {
    const groupRef = query.get('group');
    let filter: { groupId?: string } = {};
    if (groupRef !== null) {
      const group = await findGroup(ctx.store, groupRef);
      if (!group) return { status: 200, body: { connectors: [] } };
      filter = { groupId: group.id };
    }
    const [connectors, names] = await Promise.all([ctx.store.listConnectors(filter), groupNames(ctx.store)]);
    return { status: 200, body: { connectors: await Promise.all(connectors.map((c) => view(ctx, c, names))) } };
  });

  router.add('GET', '/v1/connectors/:id', async ({ ctx, params }) => {
    return { status: 200, body: await detail(ctx, await requireConnector(ctx, params.id!)) };
  });

  router.add('POST', '/v1/connectors/:id/revoke', async ({ ctx, params }) => {
    const existing = await requireConnector(ctx, params.id!);
    const connector = await ctx.store.revokeConnector(existing.id, ctx.now());
    if (existing.revokedAt === null) {
      await auditChange(ctx, 'connector.revoked', { connector: connector.id, details: { name: connector.name, groupId: connector.groupId } });
    }
    return { status: 200, body: await detail(ctx, connector) };
  });
}
