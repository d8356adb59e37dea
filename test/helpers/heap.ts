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
