import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

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
 * It also has the young generation collected after every
 * `SCAVENGE_EVERY_BYTES` of bulk data the process moved (`noteBulkBytes`),
 * see below, and collected on the process's own thread
 * (`YOUNG_GC_ON_MAIN_THREAD`).
 *
 * Returns whether the setting was applied.
 */
export function tuneGcForStreaming(env: NodeJS.ProcessEnv = process.env, v8Version: string = process.versions.v8): boolean {
  const setting = env.DRAWBRIDGE_GC_TUNING?.trim().toLowerCase();
  if (setting === '0' || setting === 'off' || setting === 'false') return false;
  if (!MEASURED_V8_MAJORS.has(Number.parseInt(v8Version, 10))) return false;
  setFlagsFromString('--external-memory-accounted-in-global-limit');
  onMainThread = helperFlagsToTurnOff(`${process.execArgv.join(' ')} ${env.NODE_OPTIONS ?? ''}`);
  collectYoung ??= youngCollector();
  return true;
}

/**
 * The young collections that `noteBulkBytes` asks for run on the thread that
 * runs JavaScript, and free the dead buffers' memory there too. By default
 * V8 hands both to its helper threads: a young collection wakes two or more
 * of them to scavenge in parallel, and the buffers it found dead are freed
 * by another job. In a bulk transfer, where each of those collections finds
 * almost nothing alive, the helpers had nothing to share and cost their
 * wake-ups: 15–20 context switches per MiB in each process, against 2–3
 * without them, and 10–20 % of the CPU per MiB (docs/performance.md, item
 * 25). The flags are turned off for those collections only and back on
 * after: V8's own young collections, which on a load of small requests find
 * the requests in flight alive, and full collections keep their helpers.
 */
export const YOUNG_GC_ON_MAIN_THREAD = ['parallel-scavenge', 'concurrent-array-buffer-sweeping'] as const;

/** Of `YOUNG_GC_ON_MAIN_THREAD`, those the command line (`flags`) did not already turn off for good, which are left alone. */
export function helperFlagsToTurnOff(flags: string): string[] {
  const given = (name: string): boolean => new RegExp(`--${name.replaceAll('-', '[-_]')}(?=[\\s=]|$)`).test(flags);
  if (given('single-threaded-gc')) return [];
  return YOUNG_GC_ON_MAIN_THREAD.filter((f) => !given(`no-${f}`));
}

let onMainThread: string[] = [];

/**
 * Bulk bytes between two young-generation collections requested by
 * `noteBulkBytes`. The buffers of a transfer are tiny objects on V8's heap
 * with large backing stores outside it, so a download allocates almost
 * nothing that fills the young generation: without help, V8 runs no young
 * collection for hundreds of MiB and frees those buffers only in full
 * collections, which the growing external memory forces every few MiB
 * (85–90 full collections in 8 downloads of 100 MiB through relay and
 * connector together). A young collection every MiB frees them while they
 * are still young and costs about 0.1 ms: 8 full collections in the same
 * downloads, relay and connector CPU per MiB down by about 40 %
 * (docs/performance.md, item 17). Every 4 MiB was too rare: the full
 * collections came back. The price falls on buffers that stay alive across
 * several MiB of traffic: those are promoted by the extra collections (a
 * synthetic churn holding 4 MiB of buffers over a 28 MiB heap ran 9 full
 * collections instead of 1); the proxy's own buffers live for one chunk.
 */
export const SCAVENGE_EVERY_BYTES = 1024 * 1024;

type GcFunction = (options: { type: 'minor' }) => void;
let collectYoung: GcFunction | undefined;
let pendingBytes = 0;
let scavengeArmed = false;

/** V8's `gc` function: the one `--expose-gc` put on the global object, or one from a fresh context. */
function youngCollector(): GcFunction {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return exposed as GcFunction;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as GcFunction;
}

const scavenge = (): void => {
  scavengeArmed = false;
  pendingBytes = 0;
  if (collectYoung === undefined) return;
  for (const flag of onMainThread) setFlagsFromString(`--no-${flag}`);
  try {
    collectYoung({ type: 'minor' });
  } finally {
    for (const flag of onMainThread) setFlagsFromString(`--${flag}`);
  }
};

/**
 * A bulk source delivered `bytes` (a tunnel message, a chunk of a request or
 * response body). Once `SCAVENGE_EVERY_BYTES` have passed, a young
 * collection runs after the current turn's I/O, when that turn's chunks are
 * garbage. Does nothing unless `tuneGcForStreaming` applied its setting.
 */
export function noteBulkBytes(bytes: number): void {
  if (collectYoung === undefined) return;
  pendingBytes += bytes;
  if (pendingBytes >= SCAVENGE_EVERY_BYTES && !scavengeArmed) {
    scavengeArmed = true;
    setImmediate(scavenge);
  }
}
