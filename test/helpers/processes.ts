/** Relay and connector in child processes, driven over IPC. */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '@drawbridge/shared';
import { appConfig, connectorConfig, pki } from './harness.ts';
import { LOCAL_USER_HEADER_RULES } from './local-gate.ts';

export interface Child {
  proc: ChildProcess;
  ready: Record<string, unknown>;
  rss(): Promise<number>;
  /** Bytes held by ArrayBuffers (all Buffers) after a full collection. */
  buffersAfterGc(): Promise<number>;
  /** Runs a full collection now. */
  collect(): Promise<void>;
  /** Starts counting what young collections promote (see helpers/heap.ts). */
  countPromotion(): Promise<void>;
  /** Stops the count: bytes promoted by young collections, and the collections run. */
  promotion(): Promise<{ promoted: number; young: number; full: number }>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

const fixtures = new URL('../fixtures/', import.meta.url);

export async function spawnFixture(name: 'run-relay' | 'run-connector', options: unknown): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'drawbridge-fixture-'));
  const file = join(dir, 'options.json');
  writeFileSync(file, JSON.stringify(options), { mode: 0o600 });
  // The young-generation cap the CLI's shebang sets, so memory is measured as it ships.
  const proc = fork(new URL(`${name}.ts`, fixtures), [file], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, '--max-semi-space-size=16', '--expose-gc'] });
  const exited = once(proc, 'exit');
  const [ready] = (await Promise.race([
    once(proc, 'message'),
    exited.then(([code]) => {
      throw new Error(`${name} exited with ${String(code)} before it was ready`);
    }),
  ])) as [Record<string, unknown>];
  const ask = async (type: string): Promise<Record<string, number | string>> => {
    proc.send({ type });
    for (;;) {
      const [m] = (await once(proc, 'message')) as [Record<string, number | string>];
      if (m.type === type) return m;
    }
  };
  return {
    proc,
    ready,
    async rss() {
      return (await ask('rss')).rss as number;
    },
    async buffersAfterGc() {
      return (await ask('buffers')).bytes as number;
    },
    async collect() {
      await ask('collect');
    },
    async countPromotion() {
      await ask('promotion-start');
    },
    async promotion() {
      const m = await ask('promotion-stop');
      return { promoted: m.promoted as number, young: m.young as number, full: m.full as number };
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.send({ type: 'stop' });
      await exited;
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * A relay and a connector with two tunnel connections, each in its own
 * process, serving one app (`hello.test`) at `internalUrl`: passthrough, or
 * with `auth` pre-authenticated by a local user through the relay's real
 * access gate, with the two header rules `LOCAL_USER_HEADER_RULES`.
 */
export async function spawnRelayAndConnector(
  internalUrl: string,
  connectorId: string,
  opts: { auth?: { user: string; password: string } } = {},
): Promise<{ relay: Child; connector: Child; publicUrl: string }> {
  const p = pki();
  const server = p.server(['127.0.0.1']);
  const apps = [appConfig({ internalUrl, ...(opts.auth ? { preauth: 'local' as const, headers: LOCAL_USER_HEADER_RULES } : {}) })];
  const auth = opts.auth ? { dataDir: mkdtempSync(join(tmpdir(), 'drawbridge-gate-')), ...opts.auth } : undefined;
  const relay = await spawnFixture('run-relay', { apps, tls: { cert: server.chain, key: server.key, ca: p.ca.cert }, ...(auth ? { auth } : {}) });
  const cert = p.client({ cn: connectorId, group: 'test-group' });
  const connector = await spawnFixture('run-connector', {
    relayUrl: relay.ready.connectorUrl,
    // The relay reports the apps as it serves them (with pre-authentication, ids come from its store).
    config: connectorConfig(relay.ready.apps as AppConfig[], { connectorId }),
    credentials: { cert: cert.cert, key: cert.key, ca: p.ca.cert },
    connections: 2,
  });
  return { relay, connector, publicUrl: relay.ready.publicUrl as string };
}

/** Samples `sample()` until `done` settles; returns the largest value seen. */
export async function peakWhile(sample: () => Promise<number>, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  while (!finished) {
    peak = Math.max(peak, await sample());
    await Promise.race([done.catch(() => undefined), new Promise((r) => setTimeout(r, 100))]);
  }
  return Math.max(peak, await sample());
}
