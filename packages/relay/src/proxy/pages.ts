/**
 * The pages a user sees when the relay, not the application, answers. Each
 * names what happened and carries the request id, so a user can quote it and
 * an operator can find the log line.
 */
import type { ServerResponse } from 'node:http';
import { formatDuration } from '@drawbridge/shared';
import { REQUEST_ID_HEADER } from './headers.ts';

export interface ErrorPage {
  status: number;
  /** Stable code, also sent as `X-Drawbridge-Error`. */
  code: string;
  title: string;
  detail: string;
  retryAfterSeconds?: number;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export function renderErrorPage(page: ErrorPage, requestId: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${page.status} ${escapeHtml(page.title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}.meta{color:#666;font-size:.9rem}</style></head>
<body><h1>${escapeHtml(page.title)}</h1><p>${escapeHtml(page.detail)}</p>
<p class="meta">Error <code>${escapeHtml(page.code)}</code> · HTTP ${page.status} · request id <code>${escapeHtml(requestId)}</code></p>
<p class="meta">Served by Drawbridge.</p></body></html>
`;
}

/** Sends `page` unless a response has already started; then the connection is cut instead. */
export function sendErrorPage(res: ServerResponse, page: ErrorPage, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = renderErrorPage(page, requestId);
  const headers: Record<string, string | number> = {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-drawbridge-error': page.code,
    [REQUEST_ID_HEADER]: requestId,
  };
  if (page.retryAfterSeconds !== undefined) headers['retry-after'] = page.retryAfterSeconds;
  res.writeHead(page.status, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export const Pages = {
  unknownHost: (host: string): ErrorPage => ({
    status: 404,
    code: 'ERR_UNKNOWN_HOST',
    title: 'No application here',
    detail: `No application is published at ${host}. Check the address, or ask your administrator to publish it.`,
  }),
  badHost: (): ErrorPage => ({ status: 400, code: 'ERR_BAD_HOST', title: 'Bad request', detail: 'The request has no usable Host header.' }),
  noConnector: (app: string, waitSeconds: number): ErrorPage => ({
    status: 503,
    code: 'ERR_NO_CONNECTOR',
    title: 'Application unavailable',
    detail: `No connector that serves ${app} is connected right now. Try again shortly; if this persists, an administrator should check the connectors of its group.`,
    retryAfterSeconds: waitSeconds,
  }),
  busy: (app: string, waitSeconds: number): ErrorPage => ({
    status: 503,
    code: 'ERR_NO_CAPACITY',
    title: 'Application busy',
    detail: `Every connection to ${app} is busy. Try again in a few seconds.`,
    retryAfterSeconds: waitSeconds,
  }),
  bodyTooLarge: (limit: number): ErrorPage => ({
    status: 413,
    code: 'ERR_BODY_TOO_LARGE',
    title: 'Request too large',
    detail: `The request body exceeds this application's limit of ${limit} bytes.`,
  }),
  headTooLarge: (): ErrorPage => ({ status: 431, code: 'ERR_REQUEST_HEAD_TOO_LARGE', title: 'Request headers too large', detail: 'The request headers are larger than the tunnel accepts.' }),
  upstream: (status: number, code: string, detail: string): ErrorPage => ({ status, code, title: status === 504 ? 'Application timed out' : 'Application error', detail }),
  totalTimeout: (appName: string, totalMs: number): ErrorPage => ({
    status: 504,
    code: 'ERR_UPSTREAM_TOTAL_TIMEOUT',
    title: 'Application timed out',
    detail: `The request to ${appName} did not complete within ${formatDuration(totalMs)}, the longest this application allows for one request. Try again; if it keeps happening, an administrator can raise the application's total timeout.`,
  }),
};
