/**
 * drawbridge-connector as a person runs it: register with the printed command,
 * run in the background, check status and metrics; errors and exit codes.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import { hashToken } from '../packages/relay/src/store/index.ts';
import type { RunningRelay } from '../packages/relay/src/server/serve.ts';
import { appConfig, client, type Origin, startOrigin } from './helpers/harness.ts';
import { serve, serveConfig } from './helpers/serve.ts';

const CLI = new URL('../packages/connector/src/cli/main.ts', import.meta.url).pathname;
const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, DRAWBRIDGE_STATE_DIR: '' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('drawbridge-connector CLI', () => {
  let relay: RunningRelay;
  let origin: Origin;
  const stateDir = join(mkdtempSync(join(tmpdir(), 'drawbridge-cli-')), 'state');
  let runner: ChildProcess | undefined;

  before(async () => {
    origin = await startOrigin((_req, res) => res.end('internal'));
    relay = await serve(serveConfig());
    const group = await relay.store.ensureGroup('default');
    await relay.store.createApp({ ...appConfig({ internalUrl: origin.url }), group: group.id });
  });

  after(async () => {
    runner?.kill('SIGKILL');
    await relay?.stop();
    await origin?.close();
    await client.close();
  });

  async function token(): Promise<string> {
    const secret = `dbt_${randomBytes(32).toString('base64url')}`;
    const group = await relay.store.ensureGroup('default');
    await relay.store.createToken({ tokenHash: hashToken(secret), groupId: group.id, expiresAt: Date.now() + 60_000, uses: 1 });
    return secret;
  }

  it('exits 2 on usage errors', async () => {
    assert.equal((await cli('register')).code, 2);
    assert.equal((await cli('register', '--relay', relay.connectorUrl)).code, 2, 'no token from any source');
    assert.equal((await cli('frobnicate')).code, 2);
  });

  it('exits 1 with a one-line reason on a refused token', async () => {
    const r = await cli('register', '--relay', relay.connectorUrl, '--token', 'dbt_wrong', '--ca-pin', relay.caPin, '--state-dir', join(stateDir, '..', 'other'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_TOKEN_UNKNOWN/);
    assert.equal(r.stderr.trim().split('\n').filter((l) => !l.startsWith('…')).length, 1);
  });

  it('registers, runs, reports status and metrics, and stops on SIGTERM', async () => {
    // The token from a file, so it never shows in `ps`.
    const tokenFile = join(stateDir, '..', 'token');
    writeFileSync(tokenFile, `${await token()}\n`, { mode: 0o600 });
    const reg = await cli('register', '--relay', relay.connectorUrl, '--token-file', tokenFile, '--ca-pin', relay.caPin, '--name', 'cli-test', '--state-dir', stateDir, '--json');
    assert.equal(reg.code, 0, reg.stderr);
    const registered = JSON.parse(reg.stdout) as { id: string; name: string; group: { name: string } };
    assert.equal(registered.name, 'cli-test');
    assert.equal(registered.group.name, 'default');

    const stopped = JSON.parse((await cli('status', '--state-dir', stateDir, '--json')).stdout) as { id: string; running: boolean };
    assert.equal(stopped.id, registered.id);
    assert.equal(stopped.running, false);

    const opened = Promise.all([once(relay.events, 'open'), once(relay.events, 'open')]);
    runner = spawn(process.execPath, [CLI, 'run', '--state-dir', stateDir, '--metrics-listen', '127.0.0.1:0', '--log-level', 'silent'], { stdio: 'ignore' });
    await opened;
    const res = await request(`${relay.relay.publicUrl}/`, { headers: { host: 'hello.test' }, dispatcher: client });
    assert.equal(await res.body.text(), 'internal');

    // The connector rewrites its status file as tunnels come up; watch it.
    type Status = { running: boolean; connections: Array<{ state: string }>; lastConfigPull: string | null; certificate: { ageDays: number }; metricsUrl: string | null };
    const readStatus = async (): Promise<Status> => JSON.parse((await cli('status', '--state-dir', stateDir, '--json')).stdout) as Status;
    const watcher = watch(stateDir);
    let status = await readStatus();
    while (!(status.running && status.metricsUrl && status.connections.filter((c) => c.state === 'ready').length === 2)) {
      await once(watcher, 'change');
      status = await readStatus();
    }
    watcher.close();
    assert.ok(status.lastConfigPull);
    assert.equal(status.certificate.ageDays, 0);
    const human = await cli('status', '--state-dir', stateDir);
    assert.match(human.stdout, /running +yes, 2\/2 tunnel connections ready/);
    const metrics = await request(`${status.metricsUrl}/metrics`, { dispatcher: client });
    const text = await metrics.body.text();
    assert.match(text, /drawbridge_connector_tunnel_connections\{state="ready"\} 2/);
    assert.match(text, /drawbridge_connector_certificate_expiry_seconds \d+/);

    const exited = once(runner, 'exit');
    runner.kill('SIGTERM');
    const [code] = (await exited) as [number];
    assert.equal(code, 0);
    runner = undefined;
  });

  it('exits 3 when the relay revokes it, so service managers stop restarting it', async () => {
    const opened = Promise.all([once(relay.events, 'open'), once(relay.events, 'open')]);
    const proc = spawn(process.execPath, [CLI, 'run', '--state-dir', stateDir, '--log-level', 'silent'], { stdio: ['ignore', 'ignore', 'pipe'] });
    runner = proc;
    let stderr = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d: string) => (stderr += d));
    const events = (await opened) as unknown as Array<[{ connectorId: string }]>;
    const connectorId = events[0]![0].connectorId;
    const exited = once(proc, 'exit');
    await relay.store.revokeConnector(connectorId, Date.now());
    const [code] = (await exited) as [number];
    assert.equal(code, 3);
    assert.match(stderr, /ERR_CERT_REVOKED/);
    runner = undefined;
  });
});
