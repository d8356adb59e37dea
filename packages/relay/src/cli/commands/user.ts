/** `user add|list|remove`: local users of the relay's built-in sign-in. */
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import type { UserView } from '../../admin/index.ts';
import { collect, type Common, withCommon, withJson } from '../args.ts';
import { connect } from '../client.ts';
import { CliError, printFields, printJson, printTable, time } from '../output.ts';

/** Upper bound of what `--password-stdin` reads; the API refuses longer passwords anyway. */
const MAX_STDIN_BYTES = 64 * 1024;

/** The password on standard input, without the one line break `echo` adds. */
async function readPasswordFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN_BYTES) throw new CliError('ERR_PASSWORD_TOO_LONG', 'the password on standard input is too long');
    chunks.push(chunk);
  }
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password === '') throw new CliError('ERR_PASSWORD_EMPTY', 'no password on standard input: pipe it in, like `printf %s "$PASSWORD" | drawbridge-relay user add NAME --password-stdin`');
  return password;
}

export function userCommand(): Command {
  const user = new Command('user').description("local users of the relay's built-in sign-in");

  withJson(withCommon(user.command('add')))
    .description('add a local user; without --password-stdin a password is generated and printed once')
    .argument('<name>', 'sign-in name')
    .option('--password-stdin', 'read the password from standard input')
    .option('--group <name>', 'group of the user (for app assignments and {groups}), repeatable', collect(String))
    .action(async (name: string, o: Common & { passwordStdin?: boolean; group?: string[] }) => {
      const generated = o.passwordStdin ? undefined : randomBytes(18).toString('base64url');
      const password = generated ?? (await readPasswordFromStdin());
      const created = await (await connect(o)).request<UserView>('POST', '/v1/users', { name, password, groups: o.group ?? [] });
      if (o.json) return printJson(generated === undefined ? created : { ...created, password: generated });
      printFields([
        ['added user', created.name],
        ['id', created.id],
        ['groups', created.groups.length > 0 ? created.groups.join(', ') : '-'],
        ...(generated === undefined ? [] : ([['password', `${generated}  (shown once; store it now)`]] as Array<[string, string]>)),
      ]);
    });

  withJson(withCommon(user.command('list')))
    .description('list local users')
    .action(async (o: Common) => {
      const { users } = await (await connect(o)).request<{ users: UserView[] }>('GET', '/v1/users');
      if (o.json) return printJson(users);
      printTable(
        users,
        [
          ['NAME', (u) => u.name],
          ['ID', (u) => u.id],
          ['GROUPS', (u) => (u.groups.length > 0 ? u.groups.join(',') : '-')],
          ['DISABLED', (u) => (u.disabled ? 'yes' : 'no')],
          ['CREATED', (u) => time(u.createdAt)],
        ],
        'no local users; add one with `drawbridge-relay user add NAME`',
      );
    });

  withJson(withCommon(user.command('remove')))
    .description('remove a local user; their sessions end on their next request')
    .argument('<user>', 'user name or id')
    .action(async (ref: string, o: Common) => {
      const removed = await (await connect(o)).request<UserView>('DELETE', `/v1/users/${encodeURIComponent(ref)}`);
      if (o.json) return printJson(removed);
      printFields([
        ['removed user', removed.name],
        ['id', removed.id],
      ]);
    });

  return user;
}
