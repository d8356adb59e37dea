/** A real `drawbridge-relay serve` in-process, on loopback ports, with a temp data dir. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRelayConfig, type RelayConfig } from '../../packages/relay/src/server/config.ts';
import { type RunningRelay, type ServeOptions, startServe } from '../../packages/relay/src/server/serve.ts';
import { logger } from './harness.ts';

export function serveConfig(overrides: Record<string, unknown> = {}): RelayConfig {
  return loadRelayConfig({
    env: {},
    overrides: {
      dataDir: mkdtempSync(join(tmpdir(), 'drawbridge-relay-')),
      'public.listen': '127.0.0.1:0',
      'connector.listen': '127.0.0.1:0',
      'admin.listen': '127.0.0.1:0',
      'connector.hosts': ['127.0.0.1', 'localhost'],
      'queue.maxWait': '2s',
      'shutdown.grace': '500ms',
      ...overrides,
    },
  });
}

export function serve(config: RelayConfig, options: ServeOptions = {}): Promise<RunningRelay> {
  return startServe(config, { logger, ...options });
}
