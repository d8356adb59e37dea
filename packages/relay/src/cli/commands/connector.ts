/** `connector list|show|revoke`: registered connectors. */
import { Command } from 'commander';
import type { ConnectorDetail, ConnectorView } from '../../admin/index.ts';
import { type Common, withCommon, withJson } from '../args.ts';
import { connect } from '../client.ts';
import { formatTable, printFields, printJson, printTable, time } from '../output.ts';

const path = (id: string): string => `/v1/connectors/${encodeURIComponent(id)}`;

function show(c: ConnectorDetail, heading?: string): void {
  if (heading) process.stdout.write(`${heading}\n`);
  printFields([
    ['id', c.id],
    ['name', c.name],
    ['group', `${c.group ?? '?'} (${c.groupId})`],
    ['version', c.version || '-'],
    ['status', c.status],
    ['connections', String(c.connections)],
    ['last seen', time(c.lastSeenAt)],
    ['registered', time(c.createdAt)],
    ['revoked', time(c.revokedAt)],
    ['certificate expires', time(c.certificateExpiresAt)],
  ]);
  if (c.certificates.length > 0) {
    process.stdout.write('\n');
    process.stdout.write(
      formatTable(c.certificates, [
        ['CERTIFICATE SERIAL', (x) => x.serial],
        ['NOT BEFORE', (x) => time(x.notBefore)],
        ['NOT AFTER', (x) => time(x.notAfter)],
        ['REVOKED', (x) => time(x.revokedAt)],
      ]),
    );
  }
  if (c.tunnels.length > 0) {
    process.stdout.write('\n');
    process.stdout.write(
      formatTable(c.tunnels, [
        ['CONNECTION', (x) => x.id],
        ['FROM', (x) => x.remoteAddress],
        ['SINCE', (x) => time(x.connectedAt)],
      ]),
    );
  }
}

export function connectorCommand(): Command {
  const connector = new Command('connector').description('connectors registered with this relay');

  withJson(withCommon(connector.command('list')))
    .description('list connectors with their connections, last contact and certificate expiry')
    .option('--group <name>', 'only connectors of this group')
    .action(async (o: Common & { group?: string }) => {
      const query = o.group === undefined ? '' : `?group=${encodeURIComponent(o.group)}`;
      const { connectors } = await (await connect(o)).request<{ connectors: ConnectorView[] }>('GET', `/v1/connectors${query}`);
      if (o.json) return printJson(connectors);
      printTable(
        connectors,
        [
          ['ID', (c) => c.id],
          ['NAME', (c) => c.name],
          ['GROUP', (c) => c.group ?? c.groupId],
          ['VERSION', (c) => c.version || '-'],
          ['STATUS', (c) => c.status],
          ['CONNECTIONS', (c) => String(c.connections)],
          ['LAST SEEN', (c) => time(c.lastSeenAt)],
          ['CERT EXPIRES', (c) => time(c.certificateExpiresAt)],
        ],
        'no connectors; create a token with `drawbridge-relay token create` and register one',
      );
    });

  withJson(withCommon(connector.command('show')))
    .description('show one connector, its certificates and its connections')
    .argument('<id>', 'connector id (con_…)')
    .action(async (id: string, o: Common) => {
      const c = await (await connect(o)).request<ConnectorDetail>('GET', path(id));
      if (o.json) return printJson(c);
      show(c);
    });

  withJson(withCommon(connector.command('revoke')))
    .description('revoke a connector: its certificates stop working and its connections close')
    .argument('<id>', 'connector id (con_…)')
    .action(async (id: string, o: Common) => {
      const c = await (await connect(o)).request<ConnectorDetail>('POST', `${path(id)}/revoke`);
      if (o.json) return printJson(c);
      show(c, `revoked connector ${c.id}`);
    });

  return connector;
}
