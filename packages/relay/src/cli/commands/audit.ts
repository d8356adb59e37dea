/** `audit [--follow]`: the relay's audit trail. */
import { setTimeout as delay } from 'node:timers/promises';
import { Command } from 'commander';
import type { AuditEventView } from '../../admin/index.ts';
import { type Common, positiveInt, since, withCommon } from '../args.ts';
import { type AdminClient, connect } from '../client.ts';
import { printJsonLine, time } from '../output.ts';

/** How often `--follow` asks for new events. */
const FOLLOW_INTERVAL_MS = 1000;

interface AuditFlags extends Common {
  follow?: boolean;
  type?: string;
  actor?: string;
  app?: string;
  connector?: string;
  outcome?: string;
  since?: string;
  limit: number;
}

interface Page {
  events: AuditEventView[];
  next: number;
}

function line(e: AuditEventView): string {
  const parts = [time(e.at), e.type, e.outcome, e.actor ?? '-'];
  if (e.app) parts.push(`app=${e.app}`);
  if (e.connector) parts.push(`connector=${e.connector}`);
  if (e.address) parts.push(`from=${e.address}`);
  if (e.requestId) parts.push(`request=${e.requestId}`);
  if (Object.keys(e.details).length > 0) parts.push(JSON.stringify(e.details));
  // eslint-disable-next-line no-control-regex -- event fields come from clients; never let them drive the terminal
  return parts.join('  ').replace(/[\x00-\x1f\x7f]/g, '?');
}

function print(events: AuditEventView[], json: boolean | undefined): void {
  for (const e of events) {
    if (json) printJsonLine(e);
    else process.stdout.write(`${line(e)}\n`);
  }
}

function filters(o: AuditFlags): URLSearchParams {
  const q = new URLSearchParams();
  for (const key of ['type', 'actor', 'app', 'connector', 'outcome', 'since'] as const) {
    const v = o[key];
    if (v !== undefined) q.set(key, v);
  }
  return q;
}

/** Prints new events as they are recorded until interrupted. */
async function follow(client: AdminClient, o: AuditFlags, after: number, signal: AbortSignal): Promise<void> {
  let cursor = after;
  const q = filters(o);
  q.set('limit', '1000');
  while (!signal.aborted) {
    q.set('after', String(cursor));
    const page = await client.request<Page>('GET', `/v1/audit?${q.toString()}`);
    print(page.events, o.json);
    cursor = page.next;
    // A full page means more are waiting: ask again at once.
    if (page.events.length < 1000) await delay(FOLLOW_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
  }
}

export function auditCommand(): Command {
  return withCommon(new Command('audit'))
    .description('show the audit trail, oldest first; --follow keeps printing new events')
    .option('-f, --follow', 'keep printing new events until interrupted')
    .option('--type <type>', 'only events of this type, like app.created')
    .option('--actor <actor>', 'only events by this actor (admin, a user id, a connector id)')
    .option('--app <app>', 'only events of this application (name or id)')
    .option('--connector <id>', 'only events of this connector')
    .option('--outcome <outcome>', 'only events with this outcome (success, denied, refused, failure)')
    .option('--since <when>', 'only events after this time or this long ago (1h, 7d, 2026-01-31T12:00:00Z)', since)
    .option('--limit <n>', 'at most this many of the latest events', positiveInt, 50)
    .option('--json', 'print one JSON object per event and line')
    .action(async (o: AuditFlags) => {
      const client = await connect(o);
      const q = filters(o);
      q.set('order', 'desc');
      q.set('limit', String(o.limit));
      const page = await client.request<Page>('GET', `/v1/audit?${q.toString()}`);
      print(page.events.reverse(), o.json);
      if (!o.follow) return;
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await follow(client, o, page.next, stop.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
