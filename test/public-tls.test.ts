/**
 * HTTPS on the public listener from certificate files, reloaded when the files
 * change: new connections get the new certificate, nothing restarts.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { RunningRelay } from '../packages/relay/src/server/serve.ts';
import { pki } from './helpers/harness.ts';
import { serve, serveConfig } from './helpers/serve.ts';

async function presentedSerial(url: string): Promise<string> {
  const u = new URL(url);
  const socket = tls.connect({ host: u.hostname, port: Number(u.port), servername: 'hello.test', ca: pki().ca.cert });
  await once(socket, 'secureConnect');
  const serial = socket.getPeerX509Certificate()!.serialNumber;
  socket.destroy();
  return serial;
}

describe('public HTTPS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drawbridge-tls-'));
  const certFile = join(dir, 'fullchain.pem');
  const keyFile = join(dir, 'privkey.pem');
  let relay: RunningRelay;
  const first = pki().server(['hello.test', '127.0.0.1']);

  before(async () => {
    writeFileSync(certFile, first.chain);
    writeFileSync(keyFile, first.key, { mode: 0o600 });
    relay = await serve(serveConfig({ 'public.tlsCertFile': certFile, 'public.tlsKeyFile': keyFile }));
  });
  after(async () => relay?.stop());

  it('serves the configured certificate over HTTPS', async () => {
    assert.match(relay.relay.publicUrl, /^https:/);
    assert.equal(await presentedSerial(relay.relay.publicUrl), new X509Certificate(first.cert).serialNumber);
  });

  it('switches to each renewed certificate when the files change, without a restart', async () => {
    for (let round = 0; round < 2; round++) {
      const renewed = pki().server(['hello.test', '127.0.0.1']);
      const reloaded = once(relay.events, 'tls-reloaded');
      // Replace both files the way certbot and friends do: write aside, rename over.
      writeFileSync(`${keyFile}.new`, renewed.key, { mode: 0o600 });
      writeFileSync(`${certFile}.new`, renewed.chain);
      renameSync(`${keyFile}.new`, keyFile);
      renameSync(`${certFile}.new`, certFile);
      await reloaded;
      assert.equal(await presentedSerial(relay.relay.publicUrl), new X509Certificate(renewed.cert).serialNumber, `renewal ${round + 1}`);
    }
  });
});
