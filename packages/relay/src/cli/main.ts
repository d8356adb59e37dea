#!/usr/bin/env -S node --max-semi-space-size=16
/**
 * drawbridge-relay: run the relay, and manage a running one through its admin
 * API. Exit codes: 0 success, 1 failure (one line on stderr says why and what
 * to do), 2 usage error.
 */
import { CommanderError } from 'commander';
import { tuneGcForStreaming } from '@drawbridge/shared/node';
import { describeError } from './client.ts';
import { buildProgram } from './program.ts';

// Before any traffic: see tuneGcForStreaming (DRAWBRIDGE_GC_TUNING=0 keeps V8's default).
tuneGcForStreaming();

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  process.stderr.write(`drawbridge-relay: ${describeError(err)}\n`);
  process.exit(1);
}
