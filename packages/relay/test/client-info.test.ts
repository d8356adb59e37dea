import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { resolveClient, trustedProxies } from '../src/proxy/client-info.ts';

function req(peer: string, headers: Record<string, string[]>, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headersDistinct: headers } as unknown as IncomingMessage;
}

describe('client address and scheme behind load balancers', () => {
  const lbs = trustedProxies(['10.0.0.0/8', '::1']);

  it('believes X-Forwarded-* only from a trusted balancer', () => {
    const forged = { 'x-forwarded-for': ['198.51.100.1'], 'x-forwarded-proto': ['https'] };
    assert.deepEqual(resolveClient(req('203.0.113.5', forged), lbs), { address: '203.0.113.5', proto: 'http' });
    assert.deepEqual(resolveClient(req('::ffff:10.1.2.3', forged), lbs), { address: '198.51.100.1', proto: 'https' });
    assert.deepEqual(resolveClient(req('10.1.2.3', forged), undefined), { address: '10.1.2.3', proto: 'http' });
  });

  it('walks X-Forwarded-For from the right past trusted hops, ignoring what the client prepended', () => {
    const headers = { 'x-forwarded-for': ['1.1.1.1, 198.51.100.7', '10.9.9.9'] };
    assert.equal(resolveClient(req('10.0.0.1', headers), lbs).address, '198.51.100.7');
  });

  it('keeps the socket scheme when the balancer sends no X-Forwarded-Proto', () => {
    assert.equal(resolveClient(req('::1', {}, true), lbs).proto, 'https');
  });

  it('refuses entries that are not addresses or ranges', () => {
    assert.throws(() => trustedProxies(['lb.example.com']));
  });
});
