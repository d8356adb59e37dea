/**
 * Where the relay's JSON log lines go: pino's own destination (SonicBoom on
 * standard output, asynchronous, as before), handed the lines of one turn of
 * the event loop in one write.
 *
 * The relay writes an access-log line for every request, and under load
 * SonicBoom's per-line work was most of what that line cost: each write
 * measured the UTF-8 length of everything still pending (a string it grows
 * by concatenation, so V8 walks it piece by piece), and a write that found
 * nothing in flight started a write of its own on libuv's thread pool,
 * waking a thread for one line. Lines now wait for the end of the current
 * turn (setImmediate: after the turn's I/O, before any timer), then go to
 * SonicBoom joined. Nothing is held longer than that turn, so the log is as
 * current as before; on exit the held lines are written synchronously after
 * SonicBoom's own.
 */
import { writeSync } from 'node:fs';
import { pino } from 'pino';

type Sink = ReturnType<typeof pino.destination>;

export class TurnBatchedDestination {
  private lines: string[] = [];
  private scheduled = false;
  readonly sink: Sink;

  constructor(sink: Sink) {
    this.sink = sink;
    process.on('exit', this.onExit);
  }

  write(line: string): boolean {
    this.lines.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.pass);
    }
    return true;
  }

  /** pino's `logger.flush(cb)`: everything held goes to the sink, which flushes. */
  flush(cb?: (err?: Error) => void): void {
    this.pass();
    this.sink.flush(cb);
  }

  /**
   * Writes everything held, synchronously: the sink's own pending output
   * first, then this turn's lines, which do not go through `sink.write`
   * (with nothing in flight that starts an asynchronous write, which
   * `flushSync` does not wait for).
   */
  flushSync(): void {
    this.sink.flushSync();
    const text = this.take();
    if (text !== undefined) writeAllSync((this.sink as unknown as { fd: number }).fd, Buffer.from(text));
  }

  /** Stops holding lines for the sink (tests, and a relay embedded in another program that closes it). */
  close(): void {
    this.pass();
    process.off('exit', this.onExit);
  }

  private readonly pass = (): void => {
    this.scheduled = false;
    const text = this.take();
    if (text !== undefined) this.sink.write(text);
  };

  /** The held lines as one string, no longer held; undefined when there are none. */
  private take(): string | undefined {
    if (this.lines.length === 0) return undefined;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    return text;
  }

  private readonly onExit = (): void => {
    if (this.lines.length === 0) return;
    try {
      this.flushSync();
    } catch {
      // The sink is gone or not ready (standard output closed): nothing more can be written.
    }
  };
}

/** `fs.writeSync` until all of `bytes` is written; a descriptor that is not ready (EAGAIN) is retried for up to a second. */
function writeAllSync(fd: number, bytes: Buffer): void {
  let offset = 0;
  let waits = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++waits > 100) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

let stdout: TurnBatchedDestination | undefined;

/**
 * The relay's logger, as `serve` makes it: on standard output (one
 * destination for every relay of the process), or on the file `dest`.
 */
export function relayLogger(level: string, dest?: string): pino.Logger {
  const open = (to: string | number): TurnBatchedDestination => new TurnBatchedDestination(pino.destination({ dest: to, sync: false }));
  const destination = dest === undefined ? (stdout ??= open(1)) : open(dest);
  return pino({ name: 'drawbridge-relay', level }, destination);
}
