/** `group add|list|remove`: connector groups. */
import { Command } from 'commander';
import type { GroupView } from '../../admin/index.ts';
import { type Common, withCommon, withJson } from '../args.ts';
import { connect } from '../client.ts';
import { printFields, printJson, printTable, time } from '../output.ts';

function show(g: GroupView, verb: string): void {
  printFields([
    [verb, g.name],
    ['id', g.id],
  ]);
}

export function groupCommand(): Command {
  const group = new Command('group').description('connector groups: the connectors that serve a set of applications');

  withJson(withCommon(group.command('add')))
    .description('add a connector group')
    .argument('<name>', 'group name')
    .action(async (name: string, o: Common) => {
      const g = await (await connect(o)).request<GroupView>('POST', '/v1/groups', { name });
      if (o.json) return printJson(g);
      show(g, 'added group');
    });

  withJson(withCommon(group.command('list')))
    .description('list connector groups')
    .action(async (o: Common) => {
      const { groups } = await (await connect(o)).request<{ groups: GroupView[] }>('GET', '/v1/groups');
      if (o.json) return printJson(groups);
      printTable(
        groups,
        [
          ['NAME', (g) => g.name],
          ['ID', (g) => g.id],
          ['APPS', (g) => String(g.apps)],
          ['CONNECTORS', (g) => String(g.connectors)],
          ['CONNECTIONS', (g) => String(g.connections)],
          ['CREATED', (g) => time(g.createdAt)],
        ],
        'no connector groups; add one with `drawbridge-relay group add NAME`',
      );
    });

  withJson(withCommon(group.command('remove')))
    .description('remove a connector group that serves no application and has no active connector')
    .argument('<group>', 'group name or id')
    .action(async (ref: string, o: Common) => {
      const g = await (await connect(o)).request<GroupView>('DELETE', `/v1/groups/${encodeURIComponent(ref)}`);
      if (o.json) return printJson(g);
      show(g, 'removed group');
    });

  return group;
}
