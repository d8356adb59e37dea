/**
 * What `serve` records for every finished exchange: one access-log line with
 * the fields docs/operations.md lists, and the request metrics.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { appConfig } from '../../../test/helpers/apps.ts';
import { createRelayMetrics } from '../src/metrics.ts';
import { exchangeRecorder } from '../src/server/access-log.ts';

describe('access log', () => {
  it('writes one line per exchange with its fields, and counts it in the metrics', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const metrics = createRelayMetrics(() => undefined);
    const record = exchangeRecorder(metrics, pino({ name: 'drawbridge-relay' }, sink));
    const app = appConfig({ id: 'app_wiki', name: 'wiki', externalHost: 'wiki.example.com', internalUrl: 'http://10.0.0.1/' });
    record({ requestId: 'req-1', app, status: 200, bytesIn: 10, bytesOut: 1024, startedAt: Date.now() - 5, connectorId: 'con_a', user: 'alice' });
    record({ requestId: 'req-2', app, status: 502, bytesIn: 0, bytesOut: 0, startedAt: Date.now(), error: 'ERR_CONNECTOR_LOST' });
    await new Promise((r) => setImmediate(r));

    assert.equal(lines.length, 2);
    assert.deepEqual(
      { ...lines[0], time: 0, pid: 0, hostname: '', ms: 0 },
      { level: 30, time: 0, pid: 0, hostname: '', name: 'drawbridge-relay', requestId: 'req-1', app: 'wiki', connector: 'con_a', user: 'alice', status: 200, ms: 0, bytesIn: 10, bytesOut: 1024, msg: 'request' },
    );
    assert.ok((lines[0]!.ms as number) >= 5);
    assert.equal(lines[1]!.error, 'ERR_CONNECTOR_LOST');
    assert.equal(lines[1]!.status, 502);

    const text = await metrics.render();
    assert.match(text, /drawbridge_requests_total\{app="wiki",status="200"\} 1/);
    assert.match(text, /drawbridge_requests_total\{app="wiki",status="502"\} 1/);
    assert.match(text, /drawbridge_bytes_total\{app="wiki",direction="out"\} 1024/);
    assert.match(text, /drawbridge_request_duration_seconds_count\{app="wiki"\} 2/);
  });
});
