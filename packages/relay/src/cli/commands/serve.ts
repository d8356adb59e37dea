/** `serve`: run the relay in the foreground until SIGINT or SIGTERM. */
import { Command } from 'commander';
import { loadRelayConfig } from '../../server/config.ts';
import { type Common, withCommon } from '../args.ts';

export function serveCommand(): Command {
  return withCommon(new Command('serve'))
    .description('run the relay: public, connector and admin listeners')
    .action(async (o: Common) => {
      const config = loadRelayConfig({ file: o.config, env: process.env, overrides: { dataDir: o.dataDir } });
      // Loaded lazily: the other commands need none of the relay's listeners.
      const { runServe } = await import('../../server/serve.ts');
      await runServe(config);
      // Stopped gracefully; leftover handles (pools, timers) must not keep the process alive.
      process.exit(0);
    });
}
