/**
 * Options every command shares, and parsers that turn a malformed flag into a
 * usage error (exit 2) before anything reaches the relay.
 */
import { parseDuration, parseSize } from '@drawbridge/shared';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { CommonOptions } from './client.ts';

/** Adds `--data-dir` and `--config` (with their environment variables) to a command. */
export function withCommon(command: Command): Command {
  return command
    .addOption(new Option('--data-dir <dir>', "the relay's data dir (admin credential, SQLite store)").env('DRAWBRIDGE_DATA_DIR'))
    .addOption(new Option('--config <file>', "the relay's config file (YAML or JSON)").env('DRAWBRIDGE_CONFIG'));
}

export function withJson(command: Command): Command {
  return command.option('--json', 'print JSON instead of a table');
}

export type Common = CommonOptions & { json?: boolean };

/** Commander collects a repeated option through this. */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

export function duration(value: string): string {
  try {
    parseDuration(value);
  } catch {
    throw new InvalidArgumentError('expected a duration like 85s, 10m, 1h');
  }
  return value;
}

export function size(value: string): string {
  try {
    parseSize(value);
  } catch {
    throw new InvalidArgumentError('expected a size like 10MiB or a number of bytes');
  }
  return value;
}

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return Number(value);
}

/** `X-Remote-User={email}` → a header rule. */
export function headerRule(value: string): { name: string; value: string } {
  const i = value.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError("expected NAME=TEMPLATE, like 'X-Remote-User={email}'");
  return { name: value.slice(0, i).trim(), value: value.slice(i + 1) };
}

/** `user:ID` or `group:ID` → an assignment. */
export function assignment(value: string): { kind: 'user' | 'group'; id: string } {
  const m = /^(user|group):(.+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected user:ID or group:ID');
  return { kind: m[1] as 'user' | 'group', id: m[2]! };
}

/** `1h` (that long ago) or an ISO 8601 time → an ISO time for the API. */
export function since(value: string): string {
  let ms: number;
  try {
    ms = Date.now() - parseDuration(value);
  } catch {
    ms = Date.parse(value);
  }
  if (!Number.isFinite(ms)) throw new InvalidArgumentError('expected a duration ago like 1h, or a time like 2026-01-31T12:00:00Z');
  return new Date(ms).toISOString();
}
