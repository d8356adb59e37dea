/** `app add|list|show|update|remove`: published applications. */
import { formatDuration } from '@drawbridge/shared';
import { Command, Option } from 'commander';
import type { AppView } from '../../admin/index.ts';
import { assignment, collect, type Common, duration, headerRule, size, withCommon, withJson } from '../args.ts';
import { connect } from '../client.ts';
import { printFields, printJson, printTable } from '../output.ts';

interface AppFlags extends Common {
  name?: string;
  host?: string;
  to?: string;
  group?: string;
  preauth?: string;
  header?: Array<{ name: string; value: string }>;
  clearHeaders?: boolean;
  assign?: Array<{ kind: 'user' | 'group'; id: string }>;
  clearAssignments?: boolean;
  timeout?: string;
  connectTimeout?: string;
  idleTimeout?: string;
  totalTimeout?: string;
  maxBody?: string;
  hostHeader?: string;
  clearHostHeader?: boolean;
  insecureSkipVerify?: boolean;
  denyRobots?: boolean;
  bearerAudience?: string;
  clearBearerAudience?: boolean;
}

/** Flags `add` and `update` share; `update` adds ways to clear. */
function appFlags(command: Command): Command {
  return command
    .option('--group <name>', 'connector group that serves the app')
    .addOption(new Option('--preauth <method>', 'how users sign in before reaching the app').choices(['oidc', 'local', 'passthrough']))
    .option('--header <NAME=TEMPLATE>', "header-based SSO rule, repeatable: 'X-Remote-User={email}' ({email} {sub} {name} {groups} {claim:NAME})", collect(headerRule))
    .option('--assign <user:ID|group:ID>', 'who may use the app, repeatable (default: every signed-in user)', collect(assignment))
    .option('--timeout <duration>', 'time for the app to send its response head', duration)
    .option('--connect-timeout <duration>', 'time to connect to the internal URL', duration)
    .option('--idle-timeout <duration>', 'longest silence on a body (0: none)', duration)
    .option('--total-timeout <duration>', 'longest a whole request may take, upload and download included (0: none, the default)', duration)
    .option('--max-body <size>', 'largest request body, like 10MiB (0: unlimited)', size)
    .option('--host-header <host>', 'Host header sent to the app (default: the external host)')
    .option('--insecure-skip-verify', 'do not verify the TLS certificate of an https internal URL')
    .option('--no-insecure-skip-verify', 'verify the TLS certificate of an https internal URL (default)')
    .option('--deny-robots', 'answer /robots.txt with Disallow: / (default)')
    .option('--no-deny-robots', 'pass /robots.txt through to the app')
    .option('--bearer-audience <aud>', 'oidc apps: also accept `Authorization: Bearer` tokens from the provider with this audience (native clients, APIs)');
}

/** The API body for the flags given; absent flags are left out. */
function body(o: AppFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o.name !== undefined) out.name = o.name;
  if (o.host !== undefined) out.externalHost = o.host;
  if (o.to !== undefined) out.internalUrl = o.to;
  if (o.group !== undefined) out.group = o.group;
  if (o.preauth !== undefined) out.preauth = o.preauth;
  if (o.header !== undefined) out.headers = o.header;
  else if (o.clearHeaders) out.headers = [];
  if (o.assign !== undefined) out.assignments = o.assign;
  else if (o.clearAssignments) out.assignments = [];
  const timeouts: Record<string, string> = {};
  if (o.timeout !== undefined) timeouts.headMs = o.timeout;
  if (o.connectTimeout !== undefined) timeouts.connectMs = o.connectTimeout;
  if (o.idleTimeout !== undefined) timeouts.idleMs = o.idleTimeout;
  if (o.totalTimeout !== undefined) timeouts.totalMs = o.totalTimeout;
  if (Object.keys(timeouts).length > 0) out.timeouts = timeouts;
  if (o.maxBody !== undefined) out.limits = { maxRequestBodyBytes: o.maxBody };
  if (o.hostHeader !== undefined) out.hostHeader = o.hostHeader;
  else if (o.clearHostHeader) out.hostHeader = null;
  if (o.insecureSkipVerify !== undefined) out.insecureSkipVerify = o.insecureSkipVerify;
  if (o.denyRobots !== undefined) out.denyRobots = o.denyRobots;
  if (o.bearerAudience !== undefined) out.bearerAudience = o.bearerAudience;
  else if (o.clearBearerAudience) out.bearerAudience = null;
  return out;
}

function noneOr(ms: number): string {
  return ms === 0 ? 'none' : formatDuration(ms);
}

function who(app: AppView): string {
  if (app.preauth === 'passthrough') return 'anyone (no sign-in)';
  if (app.assignments.length === 0) return 'every signed-in user';
  return app.assignments.map((a) => `${a.kind}:${a.id}`).join(', ');
}

function show(app: AppView, heading?: string): void {
  const fields: Array<[string, string]> = [
    ['name', app.name],
    ['id', app.id],
    ['host', app.externalHost],
    ['to', app.internalUrl],
    ['group', `${app.groupName ?? '?'} (${app.group})`],
    ['preauth', app.preauth],
    ['access', who(app)],
    ['headers', app.headers.length === 0 ? '-' : app.headers.map((h) => `${h.name}=${h.value}`).join(', ')],
    ['host header', app.hostHeader ?? '(external host)'],
    [
      'timeouts',
      `connect ${formatDuration(app.timeouts.connectMs)}, response head ${formatDuration(app.timeouts.headMs)}, idle ${noneOr(app.timeouts.idleMs)}, total ${noneOr(app.timeouts.totalMs)}`,
    ],
    ['max body', app.limits.maxRequestBodyBytes === 0 ? 'unlimited' : `${app.limits.maxRequestBodyBytes} bytes`],
    ['tls verify', app.insecureSkipVerify ? 'no (insecure)' : 'yes'],
    ['deny robots', app.denyRobots ? 'yes' : 'no'],
    ['bearer tokens', app.bearerAudience ? `accepted for audience ${app.bearerAudience}` : 'no'],
  ];
  if (heading) process.stdout.write(`${heading}\n`);
  printFields(fields);
}

const path = (ref: string): string => `/v1/apps/${encodeURIComponent(ref)}`;

export function appCommand(): Command {
  const app = new Command('app').description('applications published through the relay');

  const add = app
    .command('add')
    .description('publish an internal application on an external host')
    .argument('<name>', 'application name')
    .requiredOption('--host <external-host>', 'host name users reach, like wiki.example.com')
    .requiredOption('--to <internal-url>', 'URL the connector forwards to, like http://10.0.0.5:8080');
  withJson(withCommon(appFlags(add))).action(async (name: string, o: AppFlags) => {
      const created = await (await connect(o)).request<AppView>('POST', '/v1/apps', body({ ...o, name }));
      if (o.json) return printJson(created);
      show(created, `added application ${created.name}`);
    });

  withJson(withCommon(app.command('list')))
    .description('list applications')
    .action(async (o: Common) => {
      const { apps } = await (await connect(o)).request<{ apps: AppView[] }>('GET', '/v1/apps');
      if (o.json) return printJson(apps);
      printTable(
        apps,
        [
          ['NAME', (a) => a.name],
          ['HOST', (a) => a.externalHost],
          ['TO', (a) => a.internalUrl],
          ['GROUP', (a) => a.groupName ?? a.group],
          ['PREAUTH', (a) => a.preauth],
          ['ID', (a) => a.id],
        ],
        'no applications; publish one with `drawbridge-relay app add NAME --host HOST --to URL`',
      );
    });

  withJson(withCommon(app.command('show')))
    .description('show one application')
    .argument('<app>', 'application name or id')
    .action(async (ref: string, o: Common) => {
      const found = await (await connect(o)).request<AppView>('GET', path(ref));
      if (o.json) return printJson(found);
      show(found);
    });

  const update = app
    .command('update')
    .description('change an application; --header and --assign replace the whole list')
    .argument('<app>', 'application name or id')
    .option('--name <name>', 'new name')
    .option('--host <external-host>', 'new external host')
    .option('--to <internal-url>', 'new internal URL');
  withJson(withCommon(appFlags(update)))
    .option('--clear-headers', 'remove every header rule')
    .option('--clear-assignments', 'remove every assignment (every signed-in user may use the app)')
    .option('--clear-host-header', 'send the external host as Host again')
    .option('--clear-bearer-audience', 'stop accepting bearer tokens')
    .action(async (ref: string, o: AppFlags, command: Command) => {
      const patch = body(o);
      if (Object.keys(patch).length === 0) command.error('error: nothing to change; see `drawbridge-relay app update --help`', { exitCode: 2, code: 'drawbridge.nothingToChange' });
      const updated = await (await connect(o)).request<AppView>('PATCH', path(ref), patch);
      if (o.json) return printJson(updated);
      show(updated, `updated application ${updated.name}`);
    });

  withJson(withCommon(app.command('remove')))
    .description('stop publishing an application')
    .argument('<app>', 'application name or id')
    .action(async (ref: string, o: Common) => {
      const removed = await (await connect(o)).request<AppView>('DELETE', path(ref));
      if (o.json) return printJson(removed);
      printFields([
        ['removed application', removed.name],
        ['id', removed.id],
      ]);
    });

  return app;
}
