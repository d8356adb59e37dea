/** What the CLI prints: aligned tables and key/value blocks for people, JSON for scripts. */
import { DrawbridgeError } from '@drawbridge/shared';

/** A failure the CLI reports in one line on stderr and exits 1 for. */
export class CliError extends DrawbridgeError {}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One JSON document per line (`audit --json`, which may follow forever). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export type Column<T> = [header: string, cell: (row: T) => string];

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>): string {
  const cells = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, f]) => oneLine(f(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) => line.map((c, i) => (i === line.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export function printTable<T>(rows: readonly T[], columns: ReadonlyArray<Column<T>>, empty: string): void {
  process.stdout.write(formatTable(rows, columns));
  if (rows.length === 0) process.stderr.write(`${empty}\n`);
}

/** `key  value` lines, keys aligned. */
export function printFields(fields: ReadonlyArray<[string, string]>): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  process.stdout.write(fields.map(([k, v]) => `${k.padEnd(width)}  ${oneLine(v)}`).join('\n') + '\n');
}

/** `2026-01-31 12:00:00Z`, or `-` for never. */
export function time(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** Nothing a server sent may move the cursor or start a new line in a table. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters from the server are shown, never interpreted
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
