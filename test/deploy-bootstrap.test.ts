/**
 * The container scripts of deploy/docker, run as docker-compose.yml runs them
 * but without Docker: `mint-connector-token` next to a live relay, then
 * `connector-entrypoint` registering from the files it wrote and serving, then
 * `connector-healthcheck`. The image's command wrappers are stood in for by
 * wrappers that run this checkout's CLIs.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningRelay } from '../packages/relay/src/server/serve.ts';
import { appConfig, client, fetchVia, type Origin, startOrigin } from './helpers/harness.ts';
import { serve, serveConfig } from './helpers/serve.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const SCRIPTS = join(ROOT, 'deploy/docker');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(script: string, env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(join(SCRIPTS, script), [], { env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('deploy/docker scripts: compose bootstrap without Docker', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drawbridge-bootstrap-'));
  const bin = join(dir, 'bin');
  const stateDir = join(dir, 'connector');
  const bootstrap = join(dir, 'bootstrap');
  let relay: RunningRelay;
  let origin: Origin;
  let connector: ChildProcess | undefined;
  let base: Record<string, string>;
  let dataDir = '';

  before(async () => {
    mkdirSync(bin);
    mkdirSync(bootstrap, { mode: 0o700 });
    for (const [name, cli] of [
      ['drawbridge-relay', 'packages/relay/src/cli/main.ts'],
      ['drawbridge-connector', 'packages/connector/src/cli/main.ts'],
    ] as const) {
      writeFileSync(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, cli)}" "$@"\n`);
      chmodSync(join(bin, name), 0o755);
    }
    // Only what the image has: the wrappers (ahead of the image's own), the scripts, node and the base system.
    base = { PATH: [bin, SCRIPTS, dirname(process.execPath), '/usr/bin', '/bin'].join(':'), HOME: dir };
    origin = await startOrigin((req, res) => res.end(`internal ${req.url}`));
    const config = serveConfig();
    dataDir = config.dataDir;
    relay = await serve(config);
    const group = await relay.store.ensureGroup('default');
    await relay.store.createApp({ ...appConfig({ internalUrl: origin.url }), group: group.id });
  });

  after(async () => {
    connector?.kill('SIGKILL');
    await relay?.stop();
    await origin?.close();
    await client.close();
  });

  // As in docker-compose.yml: the relay's data dir (for admin.token) and its admin API.
  const mintEnv = (): Record<string, string> => ({
    ...base,
    DRAWBRIDGE_DATA_DIR: dataDir,
    DRAWBRIDGE_ADMIN_URL: relay.adminUrl,
    BOOTSTRAP_DIR: bootstrap,
    CONNECTOR_STATE_DIR: stateDir,
  });

  it('the entrypoint refuses to run without a registration or a token', async () => {
    const r = await sh('connector-entrypoint', { ...base, DRAWBRIDGE_STATE_DIR: stateDir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /holds no registration/);
  });

  it('mint-connector-token writes a single-use token, the CA pin and the relay URL, owner-only', async () => {
    const r = await sh('mint-connector-token', mintEnv());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is waiting for the connector/);
    for (const name of ['token', 'ca-pin', 'relay-url']) {
      assert.equal(statSync(join(bootstrap, name)).mode & 0o777, 0o600, name);
    }
    assert.match(readFileSync(join(bootstrap, 'token'), 'utf8'), /^dbt_[A-Za-z0-9_-]+\n$/);
    assert.equal(readFileSync(join(bootstrap, 'ca-pin'), 'utf8').trim(), relay.caPin);
    assert.equal(readFileSync(join(bootstrap, 'relay-url'), 'utf8').trim(), relay.connectorUrl);
  });

  it('the entrypoint registers from the files, deletes the spent token and serves through the tunnel', async () => {
    const opened = once(relay.events, 'open');
    connector = spawn(join(SCRIPTS, 'connector-entrypoint'), [], {
      env: {
        ...base,
        DRAWBRIDGE_STATE_DIR: stateDir,
        DRAWBRIDGE_REGISTRATION_TOKEN_FILE: join(bootstrap, 'token'),
        DRAWBRIDGE_RELAY_URL_FILE: join(bootstrap, 'relay-url'),
        DRAWBRIDGE_CA_PIN_FILE: join(bootstrap, 'ca-pin'),
        DRAWBRIDGE_CONNECTOR_NAME: 'compose-connector',
        DRAWBRIDGE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    connector.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(connector, 'exit').then(([code]) => assert.fail(`connector exited with ${String(code)}: ${stderr}`));
    await Promise.race([opened, exited]);
    // It is meant to exit later, when the last test stops it.
    exited.catch(() => undefined);
    assert.equal(existsSync(join(bootstrap, 'token')), false, 'the spent token file is deleted');
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    const [listed] = await relay.store.listConnectors();
    assert.equal(listed?.name, 'compose-connector');
    const res = await fetchVia(relay.relay, 'hello.test', '/through');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'internal /through');
  });

  it('connector-healthcheck passes once a tunnel connection is ready', async () => {
    const env = { ...base, DRAWBRIDGE_STATE_DIR: stateDir };
    // The status file follows the tunnels; give it a bounded number of tries.
    let r: Result = { code: -1, stdout: '', stderr: '' };
    for (let i = 0; i < 50 && r.code !== 0; i++) {
      r = await sh('connector-healthcheck', env);
      if (r.code !== 0) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /tunnel connections ready/);
  });

  it('mint-connector-token mints nothing once the connector is registered', async () => {
    const before = (await relay.store.listTokens()).length;
    const r = await sh('mint-connector-token', mintEnv());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /registered already/);
    assert.equal((await relay.store.listTokens()).length, before);
    assert.equal(existsSync(join(bootstrap, 'token')), false);
  });

  it('the entrypoint stops cleanly on SIGTERM, and the health check then fails', async () => {
    const exited = once(connector!, 'exit');
    connector!.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    connector = undefined;
    assert.equal(code, 0);
    const r = await sh('connector-healthcheck', { ...base, DRAWBRIDGE_STATE_DIR: stateDir });
    assert.notEqual(r.code, 0);
  });
});
