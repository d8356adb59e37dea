/**
 * The workloads: wrk for small requests (closed loop at 50 connections, and
 * paced at about 1,000 requests/s), curl for the 100 MiB transfers, and small
 * loopback clients here for the SSE fan-out and the slow reader. Each run is
 * bounded in time and stops by itself.
 */
import { openSync, closeSync, ftruncateSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Path } from './paths.ts';
import { peakRss, rssOf, run, sleep } from './proc.ts';

const LUA = new URL('../wrk/report.lua', import.meta.url).pathname;

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  requests: number;
}

function headerArgs(path: Path): string[] {
  const out: string[] = [];
  if (path.host) out.push('-H', `Host: ${path.host}`);
  for (const [k, v] of Object.entries(path.headers ?? {})) out.push('-H', `${k}: ${v}`);
  return out;
}

/** wrk against `path` + `/1k`. `delayMs` paces every connection (fixed rate). */
export async function wrk(path: Path, opts: { connections: number; seconds: number; delayMs?: number }): Promise<WrkResult> {
  const args = ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--timeout', '5s', '-s', LUA, ...headerArgs(path), `${path.url}/1k`];
  const env = { ...process.env, WRK_DELAY_MS: String(opts.delayMs ?? 0) };
  const { stdout } = await run('wrk', args, (opts.seconds + 20) * 1000, { env });
  const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no result: ${stdout.slice(-400)}`);
  const r = JSON.parse(line.slice(8)) as Record<string, number>;
  const errors = r.connect! + r.read! + r.write! + r.status! + r.timeout!;
  return { rps: (r.requests! / r.duration_us!) * 1e6, p50Ms: r.p50_us! / 1000, p99Ms: r.p99_us! / 1000, errors, requests: r.requests! };
}

function curlHeaders(path: Path): string[] {
  const out = ['-H', 'Expect:'];
  if (path.host) out.push('-H', `Host: ${path.host}`);
  for (const [k, v] of Object.entries(path.headers ?? {})) out.push('-H', `${k}: ${v}`);
  return out;
}

/** MiB/s of a download of `bytes` through `path`. */
export async function download(path: Path, bytes: number, timeoutS: number): Promise<number> {
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '--max-time', String(timeoutS), ...curlHeaders(path), '-w', '%{http_code} %{size_download} %{time_total}', `${path.url}/bytes?n=${bytes}`], (timeoutS + 10) * 1000);
  const [code, size, time] = stdout.trim().split(' ').map(Number) as [number, number, number];
  if (code !== 200 || size !== bytes) throw new Error(`download: status ${code}, ${size} of ${bytes} bytes`);
  return bytes / 2 ** 20 / time;
}

let uploadFile: { path: string; bytes: number } | undefined;

/** MiB/s of an upload of `bytes` through `path` (the origin answers how many it read). */
export async function upload(path: Path, bytes: number, timeoutS: number): Promise<number> {
  if (uploadFile?.bytes !== bytes) {
    const file = join(tmpdir(), `drawbridge-bench-upload-${bytes}`);
    const fd = openSync(file, 'w');
    ftruncateSync(fd, bytes);
    closeSync(fd);
    uploadFile = { path: file, bytes };
  }
  const { stdout } = await run(
    'curl',
    ['-s', '-X', 'POST', '-T', uploadFile.path, '--max-time', String(timeoutS), ...curlHeaders(path), '-H', 'content-type: application/octet-stream', '-w', '\n%{http_code} %{time_total}', `${path.url}/upload`],
    (timeoutS + 10) * 1000,
  );
  const [body, stats] = stdout.trim().split('\n') as [string, string];
  const [code, time] = stats.split(' ').map(Number) as [number, number];
  if (code !== 200 || Number(body) !== bytes) throw new Error(`upload: status ${code}, origin read ${body} of ${bytes} bytes`);
  return bytes / 2 ** 20 / time;
}

function requestHead(path: Path, target: string): string {
  const host = path.host ?? new URL(path.url).host;
  let head = `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n`;
  for (const [k, v] of Object.entries(path.headers ?? {})) head += `${k}: ${v}\r\n`;
  return `${head}\r\n`;
}

export interface SseResult {
  streams: number;
  delivered: number;
  expected: number;
  /** Peak RSS growth of each proxy process over the run, bytes. */
  growth: Record<string, number>;
  seconds: number;
}

/** `streams` concurrent SSE responses of `events` events each; counts what arrives. */
export async function sseFanout(path: Path, streams: number, events: number, intervalMs: number, memoryOf: Record<string, number>): Promise<SseResult> {
  const port = Number(new URL(path.url).port);
  const head = requestHead(path, `/sse?events=${events}&interval=${intervalMs}`);
  const sockets: net.Socket[] = [];
  let delivered = 0;
  const names = Object.keys(memoryOf);
  const pids = names.map((n) => memoryOf[n]!);
  const base = pids.map(rssOf);
  const started = performance.now();
  const limitMs = events * intervalMs + 20_000;
  const all = (async () => {
    const ends: Promise<void>[] = [];
    for (let i = 0; i < streams; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.setNoDelay(true);
      sockets.push(s);
      let tail = '';
      let mine = 0;
      ends.push(
        new Promise<void>((resolve) => {
          s.setEncoding('latin1');
          s.on('data', (d: string) => {
            const text = tail + d;
            let at = text.indexOf('data: tick');
            while (at >= 0) {
              mine += 1;
              delivered += 1;
              at = text.indexOf('data: tick', at + 10);
            }
            tail = text.slice(-9);
            if (mine >= events) {
              s.destroy();
              resolve();
            }
          });
          s.on('close', () => resolve());
          s.on('error', () => resolve());
        }),
      );
      s.write(head);
      // Open in batches: a thousand SYNs at once only measures the listen backlog.
      if (i % 100 === 99) await sleep(20);
    }
    await Promise.all(ends);
  })();
  const bounded = Promise.race([all, sleep(limitMs)]);
  const peaks = await peakRss(pids, bounded, 200);
  for (const s of sockets) s.destroy();
  const growth: Record<string, number> = {};
  names.forEach((n, i) => (growth[n] = peaks[i]! - base[i]!));
  return { streams, delivered, expected: streams * events, growth, seconds: (performance.now() - started) / 1000 };
}

export interface SlowReaderResult {
  received: number;
  growth: Record<string, number>;
}

/** A fast `bytes` response read at `rate` bytes/s for `seconds`; peak RSS growth of each process. */
export async function slowReader(path: Path, bytes: number, rate: number, seconds: number, memoryOf: Record<string, number>): Promise<SlowReaderResult> {
  const port = Number(new URL(path.url).port);
  const names = Object.keys(memoryOf);
  const pids = names.map((n) => memoryOf[n]!);
  const base = pids.map(rssOf);
  const s = net.connect(port, '127.0.0.1');
  let received = 0;
  const t0 = performance.now();
  s.on('data', (d: Buffer) => {
    received += d.length;
    const ahead = received / rate - (performance.now() - t0) / 1000;
    if (ahead > 0) {
      s.pause();
      setTimeout(() => s.resume(), ahead * 1000);
    }
  });
  s.on('error', () => undefined);
  s.write(requestHead(path, `/bytes?n=${bytes}`));
  const peaks = await peakRss(pids, sleep(seconds * 1000), 200);
  s.destroy();
  const growth: Record<string, number> = {};
  names.forEach((n, i) => (growth[n] = peaks[i]! - base[i]!));
  return { received, growth };
}
