/** `token create|list|revoke`: registration tokens for connectors. */
import { Command } from 'commander';
import type { CreatedToken, TokenView } from '../../admin/index.ts';
import { type Common, duration, positiveInt, withCommon, withJson } from '../args.ts';
import { connect } from '../client.ts';
import { printFields, printJson, printTable, time } from '../output.ts';

/** The exact command to run on the connector host. */
export function registerCommand(t: CreatedToken): string {
  return `drawbridge-connector register --relay ${t.relayUrl} --token ${t.token} --ca-pin ${t.caPin}`;
}

export function tokenCommand(): Command {
  const token = new Command('token').description('registration tokens that let a connector enrol');

  withJson(withCommon(token.command('create')))
    .description('create a registration token and print how to register a connector with it')
    .option('--group <name>', 'connector group the connector joins', 'default')
    .option('--ttl <duration>', 'how long the token is valid', duration, '1h')
    .option('--uses <n>', 'how many connectors may register with it', positiveInt, 1)
    .action(async (o: Common & { group: string; ttl: string; uses: number }) => {
      const client = await connect(o);
      const t = await client.request<CreatedToken>('POST', '/v1/tokens', { group: o.group, ttl: o.ttl, uses: o.uses });
      if (o.json) return printJson({ ...t, command: registerCommand(t) });
      const uses = t.usesLeft === 1 ? '1 use' : `${t.usesLeft} uses`;
      process.stdout.write(
        [
          `Registration token for connector group "${t.group}" (${uses}, expires ${time(t.expiresAt)}):`,
          '',
          `  ${t.token}`,
          '',
          `CA pin: ${t.caPin}`,
          '',
          'On the connector host, run:',
          '',
          `  ${registerCommand(t)}`,
          '',
        ].join('\n'),
      );
    });

  withJson(withCommon(token.command('list')))
    .description('list registration tokens (never their secrets)')
    .action(async (o: Common) => {
      const { tokens } = await (await connect(o)).request<{ tokens: TokenView[] }>('GET', '/v1/tokens');
      if (o.json) return printJson(tokens);
      printTable(
        tokens,
        [
          ['ID', (t) => t.id],
          ['GROUP', (t) => t.group ?? '-'],
          ['USES LEFT', (t) => String(t.usesLeft)],
          ['EXPIRES', (t) => time(t.expiresAt)],
          ['STATE', (t) => t.state],
        ],
        'no registration tokens; create one with `drawbridge-relay token create`',
      );
    });

  withJson(withCommon(token.command('revoke')))
    .description('delete a registration token so no connector can use it')
    .argument('<id>', 'token id (tok_…)')
    .action(async (id: string, o: Common) => {
      const t = await (await connect(o)).request<TokenView>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
      if (o.json) return printJson(t);
      printFields([
        ['revoked token', t.id],
        ['group', t.group ?? '-'],
      ]);
    });

  return token;
}
