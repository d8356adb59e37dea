/** Maps why a tunnel stream failed to what the user is told. */
import { ErrorCode, type StreamError } from '@drawbridge/shared';
import { Pages, type ErrorPage } from './pages.ts';

export function pageForStreamError(err: StreamError, appName: string): ErrorPage {
  const why = err.message;
  switch (err.wireCode) {
    case ErrorCode.UPSTREAM_CONNECT_FAILED:
      return Pages.upstream(502, 'ERR_UPSTREAM_UNREACHABLE', `The connector could not reach ${appName} at its internal address (${why}). The application may be down.`);
    case ErrorCode.UPSTREAM_TIMEOUT:
      return Pages.upstream(504, 'ERR_UPSTREAM_TIMEOUT', `${appName} did not answer in time (${why}).`);
    case ErrorCode.UPSTREAM_IDLE_TIMEOUT:
      return Pages.upstream(504, 'ERR_UPSTREAM_IDLE_TIMEOUT', `${appName} stopped sending data (${why}).`);
    case ErrorCode.UPSTREAM_TLS_FAILED:
      return Pages.upstream(502, 'ERR_UPSTREAM_TLS', `The connector could not establish TLS with ${appName} (${why}). An administrator should check the internal certificate.`);
    case ErrorCode.UPSTREAM_RESET:
      return Pages.upstream(502, 'ERR_UPSTREAM_RESET', `${appName} closed the connection before answering (${why}).`);
    case ErrorCode.TARGET_NOT_ALLOWED:
      return Pages.upstream(502, 'ERR_TARGET_NOT_ALLOWED', `The connector refused the request: ${why}.`);
    case ErrorCode.RESPONSE_HEADERS_TOO_LARGE:
      return Pages.upstream(502, 'ERR_UPSTREAM_HEADERS_TOO_LARGE', `${appName} sent response headers larger than the connector accepts.`);
    case ErrorCode.BODY_TOO_LARGE:
      return { ...Pages.bodyTooLarge(0), detail: `The request body exceeds this application's limit (${why}).` };
    case ErrorCode.REFUSED_STREAM:
      return { ...Pages.busy(appName, 1), detail: `The connector could not take the request (${why}). Try again.` };
    default:
      if (err.code === 'ERR_CONNECTION_LOST') {
        return Pages.upstream(502, 'ERR_CONNECTOR_LOST', `The connection to the connector serving ${appName} was lost while handling this request.`);
      }
      return Pages.upstream(502, 'ERR_TUNNEL', `The request to ${appName} failed in the tunnel (${why}).`);
  }
}
