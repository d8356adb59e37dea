/**
 * What the relay records when an exchange ends: the request metrics and one
 * access-log line at info level. `serve` installs it; the benchmark can run
 * the same (`BENCH_ACCESS_LOG=1`, and the bench's `drawbridge-log` path),
 * since on the 1 KiB load it costs the relay about a fifth more CPU per
 * request (docs/performance.md, item 23).
 */
import type { Logger } from 'pino';
import type { RelayMetrics } from '../metrics.ts';
import type { ExchangeSummary } from '../proxy/http-proxy.ts';

export function exchangeRecorder(metrics: Pick<RelayMetrics, 'exchange'>, logger: Logger): (s: ExchangeSummary) => void {
  return (s) => {
    metrics.exchange(s);
    logger.info(
      { requestId: s.requestId, app: s.app.name, connector: s.connectorId, user: s.user, status: s.status, error: s.error, ms: Date.now() - s.startedAt, bytesIn: s.bytesIn, bytesOut: s.bytesOut },
      'request',
    );
  };
}
