import { setFlagsFromString } from 'node:v8';

/**
 * V8 majors whose `--external-memory-accounted-in-global-limit` flag we have
 * measured (Node 24 ships V8 13.6). Later V8 turned the behaviour on by
 * default and then removed the flag (crbug.com/361124432), and an unknown
 * flag makes V8 print an error, so it is set only where it is known.
 */
const MEASURED_V8_MAJORS = new Set([13]);

/**
 * Tunes V8's garbage collector for a process that streams bytes; relay and
 * connector call it first thing. `DRAWBRIDGE_GC_TUNING=0` keeps V8's default.
 *
 * By default the backing store of every Buffer counts towards a fixed
 * external-memory allowance, and crossing it forces a full mark-compact. A
 * proxy allocates a buffer for every socket read and every reassembled tunnel
 * message, so a 100 MiB transfer cost each process 7–11 full collections
 * although none of those buffers outlives its chunk. Counting external memory
 * in V8's global limit instead cuts CPU per MiB by 15–25 %, for up to about
 * 60 MiB more transient RSS under bulk load (docs/performance.md, item 11).
 *
 * Returns whether the setting was applied.
 */
export function tuneGcForStreaming(env: NodeJS.ProcessEnv = process.env, v8Version: string = process.versions.v8): boolean {
  const setting = env.DRAWBRIDGE_GC_TUNING?.trim().toLowerCase();
  if (setting === '0' || setting === 'off' || setting === 'false') return false;
  if (!MEASURED_V8_MAJORS.has(Number.parseInt(v8Version, 10))) return false;
  setFlagsFromString('--external-memory-accounted-in-global-limit');
  return true;
}
