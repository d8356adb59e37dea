/** Small helpers for the relay's JSON endpoints: bounded body reads and coded error answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DrawbridgeError } from '@drawbridge/shared';

/** Reads and parses a JSON body of at most `limit` bytes. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new DrawbridgeError('ERR_BODY_TOO_LARGE', `request body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new DrawbridgeError('ERR_BODY_TOO_LARGE', `request body over ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new DrawbridgeError('ERR_BAD_JSON', 'request body is not valid JSON');
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** Fixed-window counter per key (source address), bounded in memory. */
export class RateLimiter {
  private windowStart = 0;
  private counts = new Map<string, number>();
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;

  constructor(limit: number, windowMs: number, maxKeys = 100_000) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.maxKeys = maxKeys;
  }

  /** Counts one attempt; returns the seconds to wait when over the limit, else 0. */
  take(key: string, now: number): number {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.counts = new Map();
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    if (this.counts.size < this.maxKeys || this.counts.has(key)) this.counts.set(key, n);
    if (n > this.limit) return Math.max(1, Math.ceil((this.windowStart + this.windowMs - now) / 1000));
    return 0;
  }
}
