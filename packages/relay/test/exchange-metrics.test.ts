/**
 * The per-request metrics are tallied in plain numbers and handed to
 * prom-client at scrape time. What a scrape shows must be what prom-client's
 * own Counter and Histogram showed when every request was recorded in them,
 * which stay here as the reference.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { DURATION_BUCKETS as BUCKETS, type RecordExchange, registerExchangeMetrics } from '../src/metrics.ts';

/** What the relay recorded before: every request straight into prom-client. */
function reference(registry: Registry): RecordExchange {
  const requests = new Counter({ name: 'drawbridge_requests_total', help: 'User requests by app and status', labelNames: ['app', 'status'], registers: [registry] });
  const duration = new Histogram({ name: 'drawbridge_request_duration_seconds', help: 'Time from request to end of response, by app', labelNames: ['app'], buckets: BUCKETS, registers: [registry] });
  const bytes = new Counter({ name: 'drawbridge_bytes_total', help: 'Body bytes by app and direction (in = from users)', labelNames: ['app', 'direction'], registers: [registry] });
  return (app, status, seconds, bytesIn, bytesOut) => {
    requests.inc({ app, status: String(status) });
    duration.observe({ app }, seconds);
    if (bytesIn) bytes.inc({ app, direction: 'in' }, bytesIn);
    if (bytesOut) bytes.inc({ app, direction: 'out' }, bytesOut);
  };
}

/** Deterministic pseudo-random numbers (a failure can be replayed). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const sortedLines = async (r: Registry): Promise<string[]> => (await r.metrics()).split('\n').filter(Boolean).sort();

describe('exchange metrics', () => {
  it('scrape the same text as prom-client recording every request, over 5,000 random exchanges', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const record = registerExchangeMetrics(ours);
    const recordRef = reference(theirs);
    const rand = lcg(7);
    // App names that need escaping in the exposition, statuses of every class, durations on and around every bound and past the last.
    const apps = ['wiki', 'grafana "ops"', 'back\\slash', 'docs'];
    const statuses = [200, 204, 301, 304, 401, 403, 404, 499, 502, 503, 504];
    const seconds = [...BUCKETS, ...BUCKETS.map((b) => b * 0.999), ...BUCKETS.map((b) => b * 1.001), 0, 120, 3600];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    for (let i = 0; i < 5000; i++) {
      const args = [pick(apps), pick(statuses), rand() < 0.5 ? pick(seconds) : rand() * 2, rand() < 0.3 ? 0 : Math.floor(rand() * 1e6), rand() < 0.1 ? 0 : Math.floor(rand() * 1e7)] as const;
      record(...args);
      recordRef(...args);
      if (i === 2500) assert.deepEqual(await sortedLines(ours), await sortedLines(theirs), 'mid-way scrape');
    }
    const lines = await sortedLines(ours);
    assert.deepEqual(lines, await sortedLines(theirs));
    assert.ok(lines.some((l) => l.startsWith('drawbridge_request_duration_seconds_bucket{le="+Inf",app="grafana \\"ops\\""}')));
    // Scraping twice shows the same totals, not twice the counts.
    assert.deepEqual(await sortedLines(ours), lines);
  });

  it('shows an app only once it has had a request, and no byte line for a direction without bytes', async () => {
    const registry = new Registry();
    const record = registerExchangeMetrics(registry);
    assert.doesNotMatch(await registry.metrics(), /app="/);
    record('wiki', 200, 0.003, 0, 512);
    const text = await registry.metrics();
    assert.match(text, /^drawbridge_requests_total\{app="wiki",status="200"\} 1$/m);
    assert.match(text, /^drawbridge_request_duration_seconds_bucket\{le="0.005",app="wiki"\} 1$/m);
    assert.match(text, /^drawbridge_bytes_total\{app="wiki",direction="out"\} 512$/m);
    assert.doesNotMatch(text, /direction="in"/);
  });
});
