/**
 * `drawbridge-relay` as a user runs it: each command is a child process
 * against a real `drawbridge-relay serve` child process (SQLite in a temp data
 * dir, loopback ports). Checks exit codes 0/1/2, --json output and the error
 * code at the end of the one-line reason; never message text.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AppView, AuditEventView, ConnectorDetail, ConnectorView, CreatedToken, GroupView, TokenView, UserView } from '../src/admin/index.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const CONNECTOR_CLI = fileURLToPath(new URL('../../connector/src/cli/main.ts', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dataDir: string;
let serveProc: ChildProcess;
let adminUrl: string;
const children = new Set<ChildProcess>();

/** The environment without any DRAWBRIDGE_* of the machine running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DRAWBRIDGE_')) env[k] = v;
  return { ...env, ...extra };
}

function run(file: string, args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  const child = spawn(process.execPath, [file, ...args], {
    env: cleanEnv(options.env ?? { DRAWBRIDGE_DATA_DIR: dataDir, DRAWBRIDGE_ADMIN_URL: adminUrl }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(options.input ?? '');
  return once(child, 'close').then(([code]) => {
    children.delete(child);
    return { code: code as number | null, stdout, stderr };
  });
}

/** Runs `drawbridge-relay ARGS` against the serving relay. */
function cli(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return run(CLI, args, options);
}

/** Exit 0; the parsed JSON on stdout. */
async function json<T>(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<T> {
  const r = await cli([...args, '--json'], options);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** Exit 1 with one line on stderr that ends in the error code. */
function expectFailure(r: Run, code: string): void {
  assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.ok(lines[0]!.endsWith(`(${code})`), r.stderr);
}

function expectUsage(r: Run): void {
  assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.notEqual(r.stderr, '');
}

/** Polls the admin API until `check` holds (a condition with a deadline, not a fixed sleep). */
async function until<T>(what: string, probe: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (check(value)) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(50);
  }
}

async function adminGet<T>(path: string): Promise<T> {
  const { readAdminCredential } = await import('../src/admin/credential.ts');
  const res = await fetch(adminUrl + path, { headers: { authorization: `Bearer ${await readAdminCredential(dataDir)}` } });
  return (await res.json()) as T;
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'drawbridge-cli-'));
  serveProc = spawn(process.execPath, [CLI, 'serve'], {
    env: cleanEnv({
      DRAWBRIDGE_DATA_DIR: dataDir,
      DRAWBRIDGE_PUBLIC_LISTEN: '127.0.0.1:0',
      DRAWBRIDGE_CONNECTOR_LISTEN: '127.0.0.1:0',
      DRAWBRIDGE_ADMIN_LISTEN: '127.0.0.1:0',
      DRAWBRIDGE_CONNECTOR_HOSTS: '127.0.0.1,localhost',
      DRAWBRIDGE_SHUTDOWN_GRACE: '500ms',
    }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(serveProc, 'exit').then(([code]) => assert.fail(`serve exited with ${String(code)} before it was ready`));
  const ready = (async () => {
    for await (const line of createInterface({ input: serveProc.stdout! })) {
      const entry = JSON.parse(line) as { msg?: string; admin?: string };
      if (entry.msg === 'relay ready' && entry.admin) return entry.admin;
    }
    throw new Error('serve closed its output before it was ready');
  })();
  adminUrl = await Promise.race([ready, exited]);
  // Keep draining the log so the relay never blocks on a full pipe.
  serveProc.stdout!.resume();
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  if (serveProc.exitCode === null && serveProc.signalCode === null) {
    serveProc.kill('SIGKILL');
    await once(serveProc, 'exit');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('program', () => {
  it('exits 0 for --help and --version, 2 for usage errors', async () => {
    assert.equal((await cli(['--help'])).code, 0);
    assert.equal((await cli(['app', 'add', '--help'])).code, 0);
    assert.match((await cli(['--version'])).stdout, /^\d+\.\d+\.\d+\n$/);
    const usage = await Promise.all([[], ['launch'], ['app'], ['app', 'list', '--bogus'], ['group', 'add'], ['app', 'show', 'a', 'b']].map((args) => cli(args)));
    for (const r of usage) expectUsage(r);
  });

  it('fails with exit 1 and says what to do when the relay cannot be reached', async () => {
    const r = await cli(['group', 'list'], { env: { DRAWBRIDGE_DATA_DIR: dataDir, DRAWBRIDGE_ADMIN_URL: 'http://127.0.0.1:9' } });
    expectFailure(r, 'ERR_ADMIN_UNREACHABLE');
  });

  it('fails with exit 1 for a wrong admin token, a data dir without credential, or a bad config file', async () => {
    expectFailure(await cli(['group', 'list'], { env: { DRAWBRIDGE_ADMIN_URL: adminUrl, DRAWBRIDGE_ADMIN_TOKEN: 'wrong' } }), 'ERR_UNAUTHORIZED');
    const empty = mkdtempSync(join(tmpdir(), 'drawbridge-cli-empty-'));
    try {
      expectFailure(await cli(['group', 'list', '--data-dir', empty], { env: { DRAWBRIDGE_ADMIN_URL: adminUrl } }), 'ERR_ADMIN_CREDENTIAL_MISSING');
      const bad = join(empty, 'relay.yaml');
      writeFileSync(bad, 'admin:\n  listen: nowhere\n');
      expectFailure(await cli(['group', 'list', '--config', bad, '--data-dir', dataDir], { env: {} }), 'ERR_CONFIG');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('finds the admin API from --config and the credential from --data-dir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drawbridge-cli-config-'));
    try {
      const config = join(dir, 'relay.yaml');
      writeFileSync(config, `admin:\n  listen: ${new URL(adminUrl).host}\n`);
      const r = await cli(['group', 'list', '--json', '--config', config, '--data-dir', dataDir], { env: {} });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Array.isArray(JSON.parse(r.stdout)));
      const viaEnv = await cli(['group', 'list', '--json'], { env: { DRAWBRIDGE_CONFIG: config, DRAWBRIDGE_DATA_DIR: dataDir } });
      assert.equal(viaEnv.code, 0, viaEnv.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('token', () => {
  it('creates a token and prints the token, CA pin, expiry and the register command', async () => {
    const r = await cli(['token', 'create']);
    assert.equal(r.code, 0, r.stderr);
    const token = /\b(dbt_[A-Za-z0-9_-]{43})\b/.exec(r.stdout)?.[1];
    const pin = /\b(sha256:[0-9a-f]{64})\b/.exec(r.stdout)?.[1];
    assert.ok(token && pin, r.stdout);
    assert.match(r.stdout, /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z/);
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith('drawbridge-connector register'))!.trim();
    assert.match(line, new RegExp(`^drawbridge-connector register --relay https://\\S+ --token ${token} --ca-pin ${pin}$`));
  });

  it('prints JSON with id, token, caPin, expiresAt and takes --group, --ttl, --uses', async () => {
    await json(['group', 'add', 'tok-grp']);
    const t = await json<CreatedToken & { command: string }>(['token', 'create', '--group', 'tok-grp', '--ttl', '2h', '--uses', '3']);
    assert.match(t.id, /^tok_/);
    assert.match(t.token, /^dbt_/);
    assert.match(t.caPin, /^sha256:[0-9a-f]{64}$/);
    assert.ok(Math.abs(Date.parse(t.expiresAt!) - Date.now() - 7_200_000) < 60_000);
    assert.equal(t.group, 'tok-grp');
    assert.equal(t.usesLeft, 3);
    assert.match(t.relayUrl, /^https:\/\//);
    assert.ok(t.command.includes(`--token ${t.token}`));
  });

  it('refuses bad flags as usage errors and an unknown group as a failure', async () => {
    expectUsage(await cli(['token', 'create', '--ttl', 'soon']));
    expectUsage(await cli(['token', 'create', '--uses', '0']));
    expectUsage(await cli(['token', 'create', '--uses', 'many']));
    expectFailure(await cli(['token', 'create', '--group', 'no-such-group']), 'ERR_UNKNOWN_GROUP');
    expectFailure(await cli(['token', 'create', '--ttl', '1s']), 'ERR_INVALID_DURATION');
  });

  it('lists and revokes tokens', async () => {
    const t = await json<CreatedToken>(['token', 'create']);
    const list = await json<TokenView[]>(['token', 'list']);
    assert.equal(list.find((x) => x.id === t.id)?.state, 'active');
    assert.ok(!JSON.stringify(list).includes(t.token), 'secrets are never listed');
    const table = await cli(['token', 'list']);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^ID\s+GROUP\s+USES LEFT\s+EXPIRES\s+STATE\n/);
    assert.equal((await json<TokenView>(['token', 'revoke', t.id])).id, t.id);
    expectFailure(await cli(['token', 'revoke', t.id]), 'ERR_NOT_FOUND');
  });
});

describe('group', () => {
  it('adds, lists and removes groups, with --json carrying ids', async () => {
    const g = await json<GroupView>(['group', 'add', 'paris']);
    assert.match(g.id, /^grp_/);
    const list = await json<GroupView[]>(['group', 'list']);
    assert.ok(list.some((x) => x.id === g.id && x.name === 'paris'));
    const table = await cli(['group', 'list']);
    assert.match(table.stdout, /^NAME\s+ID\s+APPS\s+CONNECTORS\s+CONNECTIONS\s+CREATED\n/);
    const row = table.stdout.split('\n').find((l) => l.startsWith('paris '))!;
    assert.equal(row.indexOf(g.id), table.stdout.indexOf('ID'), 'columns are aligned');
    const human = await cli(['group', 'add', 'lyon']);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /grp_/);
    assert.equal((await json<GroupView>(['group', 'remove', 'paris'])).id, g.id);
  });

  it('fails for a taken name, an invalid name, an unknown group, a group in use', async () => {
    await json(['group', 'add', 'taken']);
    expectFailure(await cli(['group', 'add', 'taken']), 'ERR_NAME_TAKEN');
    expectFailure(await cli(['group', 'add', 'no spaces']), 'ERR_INVALID_NAME');
    expectFailure(await cli(['group', 'remove', 'nowhere']), 'ERR_NOT_FOUND');
    await json(['app', 'add', 'in-use', '--host', 'in-use.example.com', '--to', 'http://10.0.0.1/', '--group', 'taken']);
    expectFailure(await cli(['group', 'remove', 'taken']), 'ERR_GROUP_IN_USE');
  });
});

describe('app', () => {
  it('adds an app with every flag and shows it', async () => {
    const app = await json<AppView>([
      'app',
      'add',
      'grafana',
      '--host',
      'grafana.example.com',
      '--to',
      'https://10.0.0.9:3000/',
      '--preauth',
      'passthrough',
      '--header',
      'X-Remote-User={email}',
      '--header',
      'X-Remote-Groups={groups}',
      '--assign',
      'user:ada',
      '--assign',
      'group:ops',
      '--timeout',
      '2m',
      '--connect-timeout',
      '5s',
      '--idle-timeout',
      '30s',
      '--total-timeout',
      '1h',
      '--max-body',
      '10MiB',
      '--host-header',
      'grafana.internal',
      '--insecure-skip-verify',
      '--no-deny-robots',
    ]);
    assert.match(app.id, /^app_/);
    assert.equal(app.preauth, 'passthrough');
    assert.deepEqual(app.headers, [
      { name: 'X-Remote-User', value: '{email}' },
      { name: 'X-Remote-Groups', value: '{groups}' },
    ]);
    assert.deepEqual(app.assignments, [
      { kind: 'user', id: 'ada' },
      { kind: 'group', id: 'ops' },
    ]);
    assert.deepEqual(app.timeouts, { connectMs: 5000, headMs: 120_000, idleMs: 30_000, totalMs: 3_600_000 });
    assert.equal(app.limits.maxRequestBodyBytes, 10 * 2 ** 20);
    assert.equal(app.hostHeader, 'grafana.internal');
    assert.equal(app.insecureSkipVerify, true);
    assert.equal(app.denyRobots, false);
    assert.equal(app.groupName, 'default');

    assert.equal((await json<AppView>(['app', 'show', 'grafana'])).id, app.id);
    assert.equal((await json<AppView>(['app', 'show', app.id])).name, 'grafana');
    const human = await cli(['app', 'show', 'grafana']);
    assert.equal(human.code, 0);
    assert.ok(human.stdout.includes(app.id));
    assert.match(human.stdout, /connect 5s, response head 2m, idle 30s, total 1h/);
    // Back to none: the default, which event streams and large downloads need.
    const none = await json<AppView>(['app', 'update', 'grafana', '--total-timeout', '0']);
    assert.equal(none.timeouts.totalMs, 0);
    assert.match((await cli(['app', 'show', 'grafana'])).stdout, /idle 30s, total none/);
  });

  it('lists apps as JSON and as an aligned table', async () => {
    const app = await json<AppView>(['app', 'add', 'listed', '--host', 'listed.example.com', '--to', 'http://10.0.0.2:8080']);
    const list = await json<AppView[]>(['app', 'list']);
    assert.ok(list.some((a) => a.id === app.id));
    const table = await cli(['app', 'list']);
    assert.match(table.stdout, /^NAME\s+HOST\s+TO\s+GROUP\s+PREAUTH\s+ID\n/);
    assert.ok(table.stdout.split('\n').some((l) => l.startsWith('listed ') && l.endsWith(app.id)));
  });

  it('updates only what is given and removes', async () => {
    const app = await json<AppView>(['app', 'add', 'upd', '--host', 'upd.example.com', '--to', 'http://10.0.0.3/', '--header', 'X-User={email}']);
    const updated = await json<AppView>(['app', 'update', 'upd', '--timeout', '20s', '--no-deny-robots', '--name', 'upd2']);
    assert.equal(updated.id, app.id);
    assert.equal(updated.name, 'upd2');
    assert.equal(updated.timeouts.headMs, 20_000);
    assert.equal(updated.denyRobots, false);
    assert.deepEqual(updated.headers, app.headers);
    const cleared = await json<AppView>(['app', 'update', app.id, '--clear-headers', '--assign', 'group:staff']);
    assert.deepEqual(cleared.headers, []);
    assert.deepEqual(cleared.assignments, [{ kind: 'group', id: 'staff' }]);
    expectUsage(await cli(['app', 'update', 'upd2']));
    assert.equal((await json<AppView>(['app', 'remove', 'upd2'])).id, app.id);
    expectFailure(await cli(['app', 'show', 'upd2']), 'ERR_NOT_FOUND');
    expectFailure(await cli(['app', 'remove', 'upd2']), 'ERR_NOT_FOUND');
  });

  it('fails with the API code for an invalid URL, a taken host, an unknown group or placeholder', async () => {
    await json(['app', 'add', 'first', '--host', 'first.example.com', '--to', 'http://10.0.0.4/']);
    expectFailure(await cli(['app', 'add', 'x1', '--host', 'x1.example.com', '--to', 'not a url']), 'ERR_INVALID_URL');
    expectFailure(await cli(['app', 'add', 'x1', '--host', 'FIRST.example.com', '--to', 'http://10.0.0.4/']), 'ERR_HOST_TAKEN');
    expectFailure(await cli(['app', 'add', 'first', '--host', 'x1.example.com', '--to', 'http://10.0.0.4/']), 'ERR_NAME_TAKEN');
    expectFailure(await cli(['app', 'add', 'x1', '--host', 'x1.example.com', '--to', 'http://10.0.0.4/', '--group', 'nope']), 'ERR_UNKNOWN_GROUP');
    expectFailure(await cli(['app', 'add', 'x1', '--host', 'x1.example.com', '--to', 'http://10.0.0.4/', '--header', 'X-U={mail}']), 'ERR_UNKNOWN_PLACEHOLDER');
    expectFailure(await cli(['app', 'add', 'x1', '--host', 'x1.example.com', '--to', 'http://10.0.0.4/', '--header', 'Connection={email}']), 'ERR_INVALID_HEADER_RULE');
    expectFailure(await cli(['app', 'add', 'x1', '--host', 'https://x1.example.com', '--to', 'http://10.0.0.4/']), 'ERR_INVALID_HOST');
    expectFailure(await cli(['app', 'update', 'first', '--host', 'bad host']), 'ERR_INVALID_HOST');
  });

  it('refuses malformed flags as usage errors', async () => {
    const base = ['app', 'add', 'x2', '--host', 'x2.example.com', '--to', 'http://10.0.0.4/'];
    const usage = await Promise.all(
      [
        ['app', 'add', 'x2', '--to', 'http://10.0.0.4/'],
        ['app', 'add', 'x2', '--host', 'x2.example.com'],
        [...base, '--preauth', 'kerberos'],
        [...base, '--header', 'no-equals-sign'],
        [...base, '--assign', 'role:x'],
        [...base, '--timeout', 'forever'],
        [...base, '--max-body', 'big'],
      ].map((args) => cli(args)),
    );
    for (const r of usage) expectUsage(r);
    const r = await cli(['app', 'show', 'x2']);
    expectFailure(r, 'ERR_NOT_FOUND');
  });
});

describe('connector', () => {
  it('lists, shows and revokes a connector registered and running for real', async () => {
    await json(['group', 'add', 'edge']);
    const t = await json<CreatedToken>(['token', 'create', '--group', 'edge']);
    const stateDir = mkdtempSync(join(tmpdir(), 'drawbridge-cli-connector-'));
    const reg = await run(CONNECTOR_CLI, ['register', '--relay', t.relayUrl, '--token', t.token, '--ca-pin', t.caPin, '--name', 'edge-1', '--state-dir', stateDir, '--json'], { env: {} });
    assert.equal(reg.code, 0, reg.stderr);
    const { id } = JSON.parse(reg.stdout) as { id: string };
    const connector = spawn(process.execPath, [CONNECTOR_CLI, 'run', '--state-dir', stateDir], { env: cleanEnv({ DRAWBRIDGE_LOG_LEVEL: 'warn' }), stdio: 'ignore' });
    children.add(connector);
    try {
      await until('the connector to connect', () => adminGet<ConnectorView>(`/v1/connectors/${id}`), (c) => c.connections > 0);
      const list = await json<ConnectorView[]>(['connector', 'list']);
      const row = list.find((c) => c.id === id)!;
      assert.equal(row.name, 'edge-1');
      assert.equal(row.group, 'edge');
      assert.equal(row.status, 'connected');
      assert.ok(row.connections >= 1);
      assert.match(row.version, /^\d+\.\d+\.\d+/);
      assert.ok(Date.parse(row.lastSeenAt!) > 0);
      assert.ok(Date.parse(row.certificateExpiresAt!) > Date.now());
      assert.deepEqual(
        (await json<ConnectorView[]>(['connector', 'list', '--group', 'edge'])).map((c) => c.id),
        [id],
      );
      const table = await cli(['connector', 'list']);
      assert.match(table.stdout, /^ID\s+NAME\s+GROUP\s+VERSION\s+STATUS\s+CONNECTIONS\s+LAST SEEN\s+CERT EXPIRES\n/);

      const shown = await json<ConnectorDetail>(['connector', 'show', id]);
      assert.equal(shown.id, id);
      assert.equal(shown.certificates.length, 1);
      assert.ok(shown.tunnels.length >= 1);
      assert.equal((await cli(['connector', 'show', id])).code, 0);

      const revoked = await json<ConnectorDetail>(['connector', 'revoke', id]);
      assert.equal(revoked.status, 'revoked');
      await until('the relay to close the revoked connector', () => adminGet<ConnectorView>(`/v1/connectors/${id}`), (c) => c.connections === 0);
      const events = (await cli(['audit', '--type', 'connector.revoked', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditEventView);
      assert.ok(events.some((e) => e.connector === id && e.actor === 'admin'));
    } finally {
      connector.kill('SIGKILL');
      children.delete(connector);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('fails for an unknown connector', async () => {
    expectFailure(await cli(['connector', 'show', 'con_nope']), 'ERR_NOT_FOUND');
    expectFailure(await cli(['connector', 'revoke', 'con_nope']), 'ERR_NOT_FOUND');
    expectUsage(await cli(['connector', 'revoke']));
  });
});

describe('user', () => {
  it('adds a user with the password from stdin and groups', async () => {
    const u = await json<UserView & { password?: string }>(['user', 'add', 'ada', '--password-stdin', '--group', 'staff', '--group', 'ops'], { input: 'correct horse battery\n' });
    assert.match(u.id, /^usr_/);
    assert.deepEqual(u.groups, ['staff', 'ops']);
    assert.equal(u.password, undefined, 'a password given is never echoed');
    const { verifyPassword } = await import('../src/auth/local-users.ts');
    const { openStore } = await import('../src/store/index.ts');
    const store = await openStore(dataDir);
    try {
      const stored = await store.getUserByName('ada');
      assert.equal(await verifyPassword('correct horse battery', stored!.passwordHash), true, 'the trailing newline is not part of the password');
    } finally {
      await store.close();
    }
  });

  it('generates a password when none is piped in and prints it once', async () => {
    const u = await json<UserView & { password: string }>(['user', 'add', 'bob']);
    assert.match(u.password, /^[A-Za-z0-9_-]{24}$/);
    const human = await cli(['user', 'add', 'carol']);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /usr_/);
    assert.match(human.stdout, /[A-Za-z0-9_-]{24}/);
  });

  it('fails for a taken name, a short or missing password', async () => {
    expectFailure(await cli(['user', 'add', 'ada', '--password-stdin'], { input: 'long enough\n' }), 'ERR_NAME_TAKEN');
    expectFailure(await cli(['user', 'add', 'dan', '--password-stdin'], { input: 'short\n' }), 'ERR_INVALID_PASSWORD');
    expectFailure(await cli(['user', 'add', 'dan', '--password-stdin'], { input: '' }), 'ERR_PASSWORD_EMPTY');
    expectFailure(await cli(['user', 'add', 'has space']), 'ERR_INVALID_NAME');
    expectUsage(await cli(['user', 'add']));
  });

  it('lists and removes users', async () => {
    const list = await json<UserView[]>(['user', 'list']);
    const ada = list.find((u) => u.name === 'ada')!;
    assert.ok(ada);
    assert.ok(!JSON.stringify(list).includes('scrypt'), 'hashes are never listed');
    assert.match((await cli(['user', 'list'])).stdout, /^NAME\s+ID\s+GROUPS\s+DISABLED\s+CREATED\n/);
    assert.equal((await json<UserView>(['user', 'remove', 'ada'])).id, ada.id);
    expectFailure(await cli(['user', 'remove', 'ada']), 'ERR_NOT_FOUND');
  });
});

describe('audit', () => {
  it('prints the latest events oldest first, one JSON object per line, with filters', async () => {
    await json(['group', 'add', 'audit-a']);
    await json(['group', 'add', 'audit-b']);
    const r = await cli(['audit', '--json', '--type', 'group.created', '--limit', '2']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditEventView);
    assert.deepEqual(
      events.map((e) => e.details.name),
      ['audit-a', 'audit-b'],
    );
    assert.ok(events[0]!.id < events[1]!.id);
    assert.ok(events.every((e) => e.actor === 'admin'));
    const human = await cli(['audit', '--since', '1h']);
    assert.equal(human.code, 0);
    assert.ok(human.stdout.includes('group.created'));
    expectUsage(await cli(['audit', '--since', 'the dawn of time']));
    expectUsage(await cli(['audit', '--limit', '0']));
  });

  it('--follow prints new events as they happen and exits 0 on SIGINT', async () => {
    const child = spawn(process.execPath, [CLI, 'audit', '--follow', '--json', '--type', 'group.created', '--limit', '1'], {
      env: cleanEnv({ DRAWBRIDGE_DATA_DIR: dataDir, DRAWBRIDGE_ADMIN_URL: adminUrl }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    const exited = once(child, 'exit');
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = JSON.parse(String((await lines.next()).value)) as AuditEventView;
    assert.equal(first.type, 'group.created', 'the latest matching event comes first');
    await json(['group', 'add', 'followed']);
    for (;;) {
      const next = await lines.next();
      assert.ok(!next.done, 'follow ended before the new event');
      const event = JSON.parse(String(next.value)) as AuditEventView;
      if (event.details.name === 'followed') break;
    }
    child.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    children.delete(child);
    assert.equal(code, 0);
  });
});

describe('serve', () => {
  it('fails with exit 1 and the setting named for an invalid configuration', async () => {
    const r = await cli(['serve'], { env: { DRAWBRIDGE_DATA_DIR: dataDir, DRAWBRIDGE_ADMIN_LISTEN: 'not-an-address' } });
    expectFailure(r, 'ERR_CONFIG');
  });

  it('stops gracefully on SIGTERM with exit 0', async () => {
    const exited = once(serveProc, 'exit');
    serveProc.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  });
});
