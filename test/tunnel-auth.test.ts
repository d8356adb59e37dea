/**
 * The tunnel upgrade is authenticated before the WebSocket handshake
 * completes: no certificate, a foreign CA's or an expired one each get their
 * own code, and no session is created.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { appConfig, pki, type Stack, startStack } from './helpers/harness.ts';

async function refusal(url: string, opts: { cert?: string; key?: string }): Promise<{ status: number; code: string }> {
  const ws = new WebSocket(`${url.replace('https', 'wss')}/v1/tunnel`, { ca: pki().ca.cert, ...opts });
  ws.on('error', () => undefined); // terminate() below reports the aborted handshake
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  let body = '';
  for await (const c of res) body += String(c);
  ws.terminate();
  return { status: res.statusCode ?? 0, code: (JSON.parse(body) as { error: { code: string } }).error.code };
}

describe('tunnel authentication', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ apps: [appConfig({ internalUrl: 'http://127.0.0.1:9' })], connectors: 0 });
  });
  after(async () => stack?.close());

  it('refuses a tunnel without a client certificate', async () => {
    assert.deepEqual(await refusal(stack.relay.connectorUrl, {}), { status: 401, code: 'ERR_CERT_REQUIRED' });
  });

  it('refuses a certificate from a foreign CA', async () => {
    const foreign = pki().client({ cn: 'con_x', ca: 'foreign' });
    assert.deepEqual(await refusal(stack.relay.connectorUrl, foreign), { status: 401, code: 'ERR_CERT_UNTRUSTED' });
  });

  it('refuses an expired certificate', async () => {
    const expired = pki().client({ cn: 'con_old', notBefore: new Date(Date.now() - 400 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    assert.deepEqual(await refusal(stack.relay.connectorUrl, expired), { status: 401, code: 'ERR_CERT_EXPIRED' });
  });

  it('registers no connection for any of them', () => {
    assert.equal(stack.relay.registry.connections().length, 0);
  });
});
