#!/usr/bin/env node
// Header echo: the internal application operators use to check what an
// application behind Drawbridge receives (SSO headers, X-Forwarded-*, the
// identity assertion). Plain Node, no dependencies, so it runs anywhere.
//
//   PORT=9000 HOST=127.0.0.1 node examples/header-echo/server.mjs
//   GET /            HTML page with the request line and every header
//   GET /?format=json   the same as JSON
import http from 'node:http';

const port = Number(process.env.PORT ?? 9000);
const host = process.env.HOST ?? '127.0.0.1';

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function headerRows(raw) {
  const rows = [];
  for (let i = 0; i < raw.length; i += 2) rows.push([raw[i], raw[i + 1]]);
  return rows;
}

export function createHeaderEcho() {
  return http.createServer((req, res) => {
    const rows = headerRows(req.rawHeaders);
    const url = new URL(req.url ?? '/', 'http://internal');
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    if (url.searchParams.get('format') === 'json' || (req.headers.accept ?? '').startsWith('application/json')) {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: rows }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    const user = req.headers['x-remote-user'];
    const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Header echo</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td{border-bottom:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;font-family:ui-monospace,monospace;word-break:break-all}
td:first-child{white-space:nowrap;font-weight:600;width:1%}tr.sso td{background:#eef7ee}</style></head>
<body><h1>Header echo</h1>
<p id="who">${user ? `Signed in as <strong>${escape(user)}</strong>` : 'No X-Remote-User header: this app is not behind header SSO.'}</p>
<p><code>${escape(req.method)} ${escape(req.url)}</code></p>
<table id="headers">${rows
      .map(([k, v]) => `<tr class="${/^x-(remote|drawbridge)-/i.test(k) ? 'sso' : ''}"><td>${escape(k)}</td><td>${escape(v)}</td></tr>`)
      .join('')}</table>
<p><a href="/.well-known/drawbridge/signout" id="signout">Sign out</a></p>
</body></html>
`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  createHeaderEcho().listen(port, host, () => process.stdout.write(`header echo listening on http://${host}:${port}\n`));
}
