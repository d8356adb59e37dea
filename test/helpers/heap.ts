import { GCProfiler } from 'node:v8';

/**
 * ArrayBuffer bytes (all Buffers) once collected, for a fixture started with
 * --expose-gc. V8 frees backing stores on another thread, so this collects
 * until the figure settles.
 */
export async function buffersAfterGc(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('buffersAfterGc needs --expose-gc');
  let last = -1;
  for (let i = 0; i < 10; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    const now = process.memoryUsage().arrayBuffers;
    if (now === last) return now;
    last = now;
  }
  return last;
}

let profiler: GCProfiler | undefined;

/** Starts counting what young collections move into the old generation. */
export function startPromotionCount(): void {
  profiler?.stop();
  profiler = new GCProfiler();
  profiler.start();
}

/**
 * Stops the count: bytes the old generation gained across young collections
 * (what they promoted), and how many young and full collections ran.
 */
export function stopPromotionCount(): { promoted: number; young: number; full: number } {
  const result = profiler?.stop();
  profiler = undefined;
  let promoted = 0;
  let young = 0;
  let full = 0;
  const oldUsed = (spaces: { spaceName: string; spaceUsedSize: number }[]): number => spaces.find((s) => s.spaceName === 'old_space')?.spaceUsedSize ?? 0;
  for (const s of result?.statistics ?? []) {
    if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep') {
      young += 1;
      promoted += Math.max(0, oldUsed(s.afterGC.heapSpaceStatistics) - oldUsed(s.beforeGC.heapSpaceStatistics));
    } else full += 1;
  }
  return { promoted, young, full };
}

/**
 * Answers the memory questions `helpers/processes.ts` asks a fixture over IPC
 * (`rss`, `buffers`, `collect`, `promotion-start`, `promotion-stop`); false
 * for any other message.
 */
export function answerMemoryQuery(m: { type: string }): boolean {
  switch (m.type) {
    case 'rss':
      process.send!({ type: 'rss', rss: process.memoryUsage.rss() });
      return true;
    case 'buffers':
      void buffersAfterGc().then((bytes) => process.send!({ type: 'buffers', bytes }));
      return true;
    case 'collect':
      (globalThis as { gc?: () => void }).gc!();
      process.send!({ type: 'collect' });
      return true;
    case 'promotion-start':
      startPromotionCount();
      process.send!({ type: 'promotion-start' });
      return true;
    case 'promotion-stop':
      process.send!({ type: 'promotion-stop', ...stopPromotionCount() });
      return true;
    default:
      return false;
  }
}
