/**
 * Process plumbing for the benchmark: children it starts (and only those) are
 * tracked so a failure or Ctrl-C never leaves one behind; every wait is bounded.
 */
import { type ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

const children = new Set<ChildProcess>();

/** Kills every child this process started, by pid. */
export function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
}

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

export interface Spawned {
  proc: ChildProcess;
  pid: number;
  /** Resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  stderr(): string;
}

/** Starts a program; stderr is kept (last 8 KiB) for error messages. */
export function start(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Spawned {
  const proc = track(spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => (err = (err + d).slice(-8192)));
  proc.on('error', (e) => (err += `\n${e.message}`));
  return { proc, pid: proc.pid ?? 0, stop: (signal) => stopProc(proc, signal), stderr: () => err };
}

async function stopProc(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(t);
}

export interface NodeChild extends Spawned {
  ready: Record<string, unknown>;
  /** Sends a message and waits for the reply of the same type. */
  ask(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Forks a TypeScript fixture that reports `{type:'ready'}` over IPC. */
export async function forkFixture(file: URL, args: string[], execArgv: string[] = [], timeoutMs = 60_000): Promise<NodeChild> {
  const proc = track(fork(file, args, { execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] }));
  let err = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => {
    err = (err + d).slice(-8192);
    if (process.env.BENCH_VERBOSE) process.stderr.write(d);
  });
  const ready = await withTimeout(
    new Promise<Record<string, unknown>>((resolve, reject) => {
      proc.once('message', (m) => resolve(m as Record<string, unknown>));
      proc.once('exit', (code) => reject(new Error(`${file.pathname} exited (${String(code)}) before it was ready: ${err.trim().slice(-600)}`)));
    }),
    timeoutMs,
    `${file.pathname} ready`,
  );
  const ask = async (type: string, t = 30_000): Promise<Record<string, unknown>> => {
    const reply = new Promise<Record<string, unknown>>((resolve) => {
      const on = (m: unknown): void => {
        if ((m as { type?: string }).type === type) {
          proc.off('message', on);
          resolve(m as Record<string, unknown>);
        }
      };
      proc.on('message', on);
    });
    proc.send({ type });
    return withTimeout(reply, t, `${type} reply`);
  };
  return {
    proc,
    pid: proc.pid ?? 0,
    ready,
    ask,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.send({ type: 'stop' });
      const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command to completion; rejects on a non-zero exit or after `timeoutMs`. */
export function run(cmd: string, args: string[], timeoutMs: number, opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: opts.env ?? process.env, cwd: opts.cwd }, (err, stdout, stderr) => {
      if (err) {
        const e: Error & { stderr?: string; stdout?: string } = err;
        e.stderr = stderr;
        e.stdout = stdout;
        reject(e);
      }
      else resolve({ stdout, stderr });
    });
    track(c);
  });
}

/** True when `cmd` is on PATH (or is an absolute path that exists). */
export async function have(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`], 5_000);
    return true;
  } catch {
    return false;
  }
}

/** A port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
export async function waitPort(port: number, timeoutMs = 20_000, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (alive && !alive()) throw new Error(`process died before port ${port} opened`);
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** User + system CPU time a process has used, in milliseconds, from /proc. */
export function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

const HAS_SCHEDSTAT = existsSync('/proc/self/schedstat');

/**
 * Nanoseconds of CPU that the processes `roots`, and every process descended
 * from them (nginx's workers, sshd's session processes), have run so far:
 * the sum over all their threads of the scheduler's own count
 * (`/proc/<pid>/task/<tid>/schedstat`), which is exact where /proc's
 * user and system times move in 10 ms ticks (the fallback where a kernel
 * keeps no schedstat). Threads and processes that have exited are not
 * counted, so take both readings of a difference while the same processes run.
 */
export function treeCpuNs(roots: number[]): number {
  const kids = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited since the listing
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = kids.get(ppid);
    if (list) list.push(Number(entry));
    else kids.set(ppid, [Number(entry)]);
  }
  let ns = 0;
  const todo = [...roots];
  const seen = new Set<number>();
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    todo.push(...(kids.get(pid) ?? []));
    if (!HAS_SCHEDSTAT) {
      try {
        ns += cpuMsOf(pid) * 1e6;
      } catch {
        // exited since the listing
      }
      continue;
    }
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
      } catch {
        // the thread exited since the listing
      }
    }
  }
  return ns;
}

/**
 * Starts counting the CPU time of processes `pids` and their descendants (a
 * path's proxy processes: not the origin's, not the load generator's); the
 * returned function gives the nanoseconds since. Undefined for no processes
 * (direct has none).
 */
export function cpuMeter(pids: number[]): (() => number) | undefined {
  if (pids.length === 0) return undefined;
  const start = treeCpuNs(pids);
  return () => treeCpuNs(pids) - start;
}

/** CPU milliseconds the whole machine has been busy (every core, user, system, interrupts; not idle or iowait) since boot, from /proc/stat. */
export function machineBusyMs(): number {
  const jiffies = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (jiffies[i] ?? 0), 0);
  return (busy * 1000) / 100;
}

/** Stops every child and exits with status 2 when a bench command overruns `seconds`; returns the timer to clear. */
export function deadline(name: string, seconds: number): NodeJS.Timeout {
  process.on('exit', killAll);
  return setTimeout(() => {
    process.stderr.write(`${name}: deadline reached, stopping\n`);
    killAll();
    process.exit(2);
  }, seconds * 1000);
}

/** Resident set size of a process in bytes, from /proc (0 when it is gone). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples the RSS of `pids` every `everyMs` until `done` settles; returns the peak of each. */
export async function peakRss(pids: number[], done: Promise<unknown>, everyMs = 100): Promise<number[]> {
  const peak = pids.map(rssOf);
  let finished = false;
  void done.then(
    () => (finished = true),
    () => (finished = true),
  );
  while (!finished) {
    await Promise.race([done.catch(() => undefined), sleep(everyMs)]);
    pids.forEach((p, i) => (peak[i] = Math.max(peak[i]!, rssOf(p))));
  }
  return peak;
}
