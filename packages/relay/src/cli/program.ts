/** The `drawbridge-relay` command tree. */
import { Command } from 'commander';
import { appCommand } from './commands/app.ts';
import { auditCommand } from './commands/audit.ts';
import { connectorCommand } from './commands/connector.ts';
import { groupCommand } from './commands/group.ts';
import { serveCommand } from './commands/serve.ts';
import { tokenCommand } from './commands/token.ts';
import { userCommand } from './commands/user.ts';

export const RELAY_VERSION = '0.1.0';

/** Usage errors throw `CommanderError` (exit 2); failures throw anything else (exit 1). */
export function buildProgram(): Command {
  const program = new Command('drawbridge-relay')
    .description('Drawbridge relay: publishes internal applications to authenticated users through connector tunnels')
    .version(RELAY_VERSION)
    .showSuggestionAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const command of [serveCommand(), tokenCommand(), groupCommand(), appCommand(), connectorCommand(), userCommand(), auditCommand()]) {
    program.addCommand(command);
  }
  // Every command, however deep, throws instead of exiting so main() picks the exit code.
  const override = (command: Command): void => {
    command.exitOverride();
    for (const sub of command.commands) override(sub);
  };
  override(program);
  return program;
}
