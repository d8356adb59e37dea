/**
 * `pnpm demo`: a relay, a connector and a header-echo application on this
 * machine, wired exactly as in production (admin API, registration token,
 * pinned CA, local sign-in), so a newcomer sees a protected app in a browser.
 *
 *   pnpm demo            reuse .drawbridge-demo/ (registration, users) if present
 *   pnpm demo --reset    start from scratch
 *
 * Ports: public 8080, connector 8443, admin 8081 on 127.0.0.1; override with the
 * usual DRAWBRIDGE_PUBLIC_LISTEN, DRAWBRIDGE_CONNECTOR_LISTEN, DRAWBRIDGE_ADMIN_LISTEN.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { registerConnector, startService } from '../packages/connector/src/index.ts';
import { readAdminCredential } from '../packages/relay/src/admin/credential.ts';
import { loadRelayConfig } from '../packages/relay/src/server/config.ts';
import { startServe } from '../packages/relay/src/server/serve.ts';
import { createHeaderEcho } from '../examples/header-echo/server.mjs';

const root = resolve(process.env.DRAWBRIDGE_DEMO_DIR ?? '.drawbridge-demo');
const relayDir = join(root, 'relay');
const connectorDir = join(root, 'connector');
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const step = (line: string): void => void process.stdout.write(`  … ${line}\n`);

async function main(): Promise<void> {
  if (process.argv.includes('--reset') && existsSync(root)) {
    rmSync(root, { recursive: true, force: true });
    say(`Removed ${root}; starting from scratch.`);
  } else if (existsSync(root)) {
    say(`Reusing ${root} (registration, users, app). Run \`pnpm demo --reset\` to start from scratch.`);
  } else {
    say(`Creating ${root}.`);
  }
  const logger = pino({ level: process.env.DRAWBRIDGE_LOG_LEVEL ?? 'warn' });

  step('starting the header-echo application on loopback');
  const echo = createHeaderEcho();
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;

  step('starting the relay (SQLite store, CA and admin credential in the data dir)');
  const defaults: Record<string, string> = {
    DRAWBRIDGE_PUBLIC_LISTEN: '127.0.0.1:8080',
    DRAWBRIDGE_CONNECTOR_LISTEN: '127.0.0.1:8443',
    DRAWBRIDGE_ADMIN_LISTEN: '127.0.0.1:8081',
    DRAWBRIDGE_CONNECTOR_HOSTS: 'localhost,127.0.0.1',
  };
  const env = { ...defaults, ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('DRAWBRIDGE_') && k !== 'DRAWBRIDGE_DEMO_DIR')) };
  let relay;
  try {
    relay = await startServe(loadRelayConfig({ env, overrides: { dataDir: relayDir } }), { logger });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      throw new Error(`a port the demo needs is in use (${e.message}); stop what uses it, or move the demo with e.g. DRAWBRIDGE_PUBLIC_LISTEN=127.0.0.1:8090`, { cause: err });
    }
    throw err;
  }
  const adminToken = await readAdminCredential(relayDir);
  const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${relay.adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status >= 400 && res.status !== 404) throw new Error(`admin API ${method} ${path}: ${JSON.stringify(json)}`);
    return { status: res.status, json };
  };

  const statePath = join(connectorDir, 'state.json');
  if (existsSync(statePath)) {
    const saved = JSON.parse(readFileSync(statePath, 'utf8')) as { relayUrl?: string; connectorId?: string };
    if (saved.relayUrl !== relay.connectorUrl) {
      step(`the relay now listens at ${relay.connectorUrl}, not ${saved.relayUrl ?? '?'}: revoking the old connector and registering again`);
      if (saved.connectorId) await admin('POST', `/v1/connectors/${saved.connectorId}/revoke`);
      rmSync(connectorDir, { recursive: true, force: true });
    }
  }
  if (!existsSync(statePath)) {
    step('creating a registration token (drawbridge-relay token create)');
    const token = (await admin('POST', '/v1/tokens', { group: 'default', ttl: '10m', uses: 1 })).json;
    step(`registering a connector against ${relay.connectorUrl} with CA pin ${relay.caPin.slice(0, 23)}…`);
    await registerConnector({ relayUrl: relay.connectorUrl, token: String(token.token), caPin: relay.caPin, name: 'demo-connector', stateDir: connectorDir, progress: (l) => step(l) });
  } else {
    step('the connector is already registered');
  }

  step('publishing hello.localhost with local sign-in and header SSO');
  const app = {
    externalHost: 'hello.localhost',
    internalUrl: echoUrl,
    group: 'default',
    preauth: 'local',
    headers: [
      { name: 'X-Remote-User', value: '{name}' },
      { name: 'X-Remote-Groups', value: '{groups}' },
    ],
    assignments: [{ kind: 'group', id: 'demo-users' }],
  };
  if ((await admin('GET', '/v1/apps/hello')).status === 404) await admin('POST', '/v1/apps', { name: 'hello', ...app });
  else await admin('PATCH', '/v1/apps/hello', app); // the echo app's port changes every run

  const password = randomBytes(12).toString('base64url');
  if ((await admin('GET', '/v1/users/demo')).status === 404) await admin('POST', '/v1/users', { name: 'demo', password, groups: ['demo-users'] });
  else await admin('PATCH', '/v1/users/demo', { password, groups: ['demo-users'], disabled: false });

  step('starting the connector');
  const connector = await startService({ stateDir: connectorDir, logger });
  const timeout = setTimeout(() => {
    process.stderr.write(`demo: the connector could not open a tunnel to ${relay.connectorUrl} within 30 s; run with DRAWBRIDGE_LOG_LEVEL=info to see why, or start over with --reset\n`);
    process.exit(1);
  }, 30_000);
  await connector.connector.waitReady(1);
  clearTimeout(timeout);

  const publicPort = new URL(relay.relay.publicUrl).port;
  say('');
  say('Drawbridge demo is running.');
  say('');
  say(`  open       http://hello.localhost:${publicPort}/`);
  say('  user       demo');
  say(`  password   ${password}`);
  say('');
  say(`  admin API  ${relay.adminUrl} (token in ${join(relayDir, 'admin.token')})`);
  say(`  CLI        node packages/relay/src/cli/main.ts app list --data-dir ${relayDir}`);
  say('');
  say('Press Ctrl-C to stop.');

  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolveStop();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  say('Stopping…');
  await connector.stop(1_000);
  await relay.stop();
  await new Promise<void>((r) => echo.close(() => r()));
  say('Stopped.');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
