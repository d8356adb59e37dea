/** Maps failures talking to the internal application to wire error codes. */
import { ErrorCode } from '@drawbridge/shared';

const CONNECT_FAILED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ECONNABORTED']);
const TLS_FAILED = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;

/** The wire code and a short, secret-free description of why an upstream request failed. */
export function upstreamFailure(err: unknown): { code: number; message: string } {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  const text = `${code || 'error'}${e.message ? `: ${e.message}` : ''}`.slice(0, 300);
  if (CONNECT_FAILED.has(code) || CONNECT_FAILED.has(e.cause?.code ?? '')) return { code: ErrorCode.UPSTREAM_CONNECT_FAILED, message: text };
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { code: ErrorCode.UPSTREAM_TIMEOUT, message: `connect timed out (${text})` };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'ETIMEDOUT':
      return { code: ErrorCode.UPSTREAM_TIMEOUT, message: text };
    case 'UND_ERR_BODY_TIMEOUT':
      return { code: ErrorCode.UPSTREAM_IDLE_TIMEOUT, message: text };
    case 'UND_ERR_HEADERS_OVERFLOW':
      return { code: ErrorCode.RESPONSE_HEADERS_TOO_LARGE, message: text };
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
      return { code: ErrorCode.UPSTREAM_RESET, message: text };
  }
  if (TLS_FAILED.test(code)) return { code: ErrorCode.UPSTREAM_TLS_FAILED, message: text };
  return { code: ErrorCode.UPSTREAM_RESET, message: text };
}
