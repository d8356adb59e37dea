/**
 * Test PKI built on the relay's real CA and the connector's real CSR code:
 * a CA with its pin, server certificates with SANs, and connector client
 * certificates, including expired ones and ones from a foreign CA.
 *
 * @example
 * const pki = createTestPki();
 * const server = pki.server(['localhost', '127.0.0.1', '::1']);
 * const client = pki.client({ cn: 'con_1' });
 * tls.createServer({ ...server, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true });
 */
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { CertificateAuthority } from '../../packages/relay/src/ca/index.ts';
import { createCsr } from '../../packages/connector/src/identity/index.ts';

export interface PemPair {
  cert: string;
  key: string;
}

export interface ClientCertOptions {
  /** Connector id: the certificate's CN. */
  cn: string;
  /** Group id: the certificate's O. Default `test-group`. */
  group?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** `foreign`: issued by another CA that the relay does not trust. Default `self`. */
  ca?: 'self' | 'foreign';
}

export interface ClientCert extends PemPair {
  /** Normalized serial (lower-case hex), as the relay stores it. */
  serial: string;
  /** Client certificate followed by its CA. */
  chain: string;
}

export interface ServerCert extends PemPair {
  /** Server certificate followed by the CA: what the relay serves, so pinning works. */
  chain: string;
}

export interface TestPki {
  ca: { cert: string; key: string; pin: string };
  /** The CA object itself, for tests that sign CSRs directly. */
  authority: CertificateAuthority;
  /** A second CA, unrelated to `ca` (created on first use). */
  foreign(): { cert: string; key: string; pin: string; authority: CertificateAuthority };
  server(hosts?: string[]): ServerCert;
  client(opts: ClientCertOptions): ClientCert;
}

export interface TestPkiOptions {
  /** CA key size; 2048 (the default here) keeps tests fast. */
  keyBits?: number;
  commonName?: string;
}

function clientFrom(authority: CertificateAuthority, opts: ClientCertOptions): ClientCert {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const issued = authority.signConnectorCsr(createCsr(privateKey), {
    connectorId: opts.cn,
    groupId: opts.group ?? 'test-group',
    ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
    ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
  });
  return {
    cert: issued.certPem,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    serial: issued.serial,
    chain: issued.certPem + issued.caChainPem,
  };
}

export function createTestPki(opts: TestPkiOptions = {}): TestPki {
  const authority = CertificateAuthority.create({ keyBits: opts.keyBits ?? 2048, commonName: opts.commonName ?? 'Drawbridge test CA' });
  let foreignCa: CertificateAuthority | undefined;
  const foreign = (): CertificateAuthority => (foreignCa ??= CertificateAuthority.create({ keyBits: 2048, commonName: 'Foreign test CA' }));
  return {
    ca: { cert: authority.certPem, key: authority.keyPem, pin: authority.pin },
    authority,
    foreign() {
      const f = foreign();
      return { cert: f.certPem, key: f.keyPem, pin: f.pin, authority: f };
    },
    server(hosts = ['localhost', '127.0.0.1', '::1']) {
      const issued = authority.issueServerCert(hosts);
      return { cert: issued.certPem, key: issued.keyPem, chain: issued.chainPem };
    },
    client(clientOpts) {
      return clientFrom(clientOpts.ca === 'foreign' ? foreign() : authority, clientOpts);
    },
  };
}

export interface HandshakeResult {
  /** The server accepted the client (its secureConnection handler ran). */
  accepted: boolean;
  /** The client certificate as the server saw it, when accepted. */
  peer?: tls.PeerCertificate;
  /** The server's `authorized` flag for the connection, when accepted. */
  authorized?: boolean;
  /** The server-side TLS error, when refused. */
  serverError?: Error & { code?: string };
  /** The client-side error, if any. */
  clientError?: Error & { code?: string };
}

/**
 * One TLS connection from `client` options to a fresh server with `server`
 * options on 127.0.0.1, port 0. Resolves when both sides are done (no
 * sleeps): the server either ran its connection handler or reported a TLS
 * client error, and the client socket closed.
 *
 * @example
 * const r = await tlsHandshake({ key, cert, ca, requestCert: true, rejectUnauthorized: true }, { ca, key: c.key, cert: c.cert, servername: 'localhost' });
 * assert.equal(r.accepted, true);
 */
export async function tlsHandshake(server: tls.TlsOptions, client: tls.ConnectionOptions): Promise<HandshakeResult> {
  const result: HandshakeResult = { accepted: false };
  const srv = tls.createServer(server);
  const serverDone = new Promise<void>((resolve) => {
    srv.once('secureConnection', (socket: tls.TLSSocket) => {
      result.accepted = true;
      result.peer = socket.getPeerCertificate(true);
      result.authorized = socket.authorized;
      socket.end('ok');
      resolve();
    });
    srv.once('tlsClientError', (err: Error) => {
      result.serverError = err;
      resolve();
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  try {
    const socket = tls.connect({ host: '127.0.0.1', port, ...client });
    socket.on('error', (err: Error) => {
      result.clientError = err;
    });
    // Not events.once(socket, 'close'): it rejects on 'error', and a refused handshake is a result here.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.resume();
    await Promise.all([closed, serverDone]);
  } finally {
    srv.close();
  }
  return result;
}
