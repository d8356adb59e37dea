/**
 * The connector's calls to the relay's connector API (registration,
 * configuration pull, certificate renewal) over TLS; all but registration
 * authenticate with the client certificate.
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { type ConnectorConfig, DrawbridgeError } from '@drawbridge/shared';
import { Agent, request } from 'undici';
import { pinMatches, pinOf } from './identity/index.ts';

export interface Credentials {
  cert: string;
  key: string;
  ca?: string | undefined;
}

async function call<T>(dispatcher: Agent, url: URL, method: 'GET' | 'POST', body: unknown, headers: Record<string, string> = {}): Promise<T> {
  let res;
  try {
    res = await request(url, {
      method,
      dispatcher,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    throw new DrawbridgeError('ERR_RELAY_UNREACHABLE', `cannot reach the relay at ${url.origin} (${e.code ?? ''} ${e.message ?? ''}): check --relay and the network path to it`.replace(/\s+/g, ' '));
  }
  const text = await res.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DrawbridgeError('ERR_RELAY_BAD_ANSWER', `the relay answered ${res.statusCode} with something that is not JSON: is ${url.origin} the relay's connector listener?`);
  }
  if (res.statusCode >= 400) {
    const e = (parsed as { error?: { code?: string; message?: string } }).error;
    throw new DrawbridgeError(e?.code ?? 'ERR_RELAY_REFUSED', e?.message ?? `relay answered ${res.statusCode}`);
  }
  return parsed as T;
}

/**
 * Connects once without trusting anything, checks the presented chain against
 * `pin`, and returns the pinned CA certificate. The token is never sent over a
 * connection that failed this check.
 */
export async function fetchPinnedCa(relayUrl: string, pin: string): Promise<string> {
  const url = new URL(relayUrl);
  const socket = tls.connect({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 443),
    rejectUnauthorized: false,
    ...(isIP(url.hostname.replace(/^\[|\]$/g, '')) ? {} : { servername: url.hostname }),
  });
  try {
    await Promise.race([once(socket, 'secureConnect'), once(socket, 'error').then(([e]) => Promise.reject(e as Error))]);
  } catch (err) {
    throw new DrawbridgeError('ERR_RELAY_UNREACHABLE', `cannot reach the relay at ${url.origin}: ${(err as Error).message}`);
  }
  const peer = socket.getPeerCertificate(true);
  socket.destroy();
  if (!pinMatches(peer, pin)) {
    throw new DrawbridgeError(
      'ERR_CA_PIN_MISMATCH',
      `the relay at ${url.origin} presented certificates that do not match ${pin}; nothing was sent. Check --relay and copy --ca-pin again from \`drawbridge-relay token create\``,
    );
  }
  // The pinned certificate becomes the only trust anchor for what follows.
  const seen = new Set<string>();
  for (let c: typeof peer | undefined = peer; c && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    const x = new X509Certificate(c.raw);
    if (pinOf(x) === pin) return x.toString();
  }
  throw new DrawbridgeError('ERR_CA_PIN_MISMATCH', `no certificate in the relay's chain has the pin ${pin}`);
}

export interface RegisterRequest {
  relayUrl: string;
  token: string;
  csr: string;
  name: string;
  version: string;
  /** Trust anchor from the pin; undefined = the system trust store. */
  ca?: string | undefined;
}

export interface RegisterResponse {
  connectorId: string;
  name: string;
  group: { id: string; name: string };
  certificate: string;
  caChain: string;
  notAfter: number;
}

export async function register(req: RegisterRequest): Promise<RegisterResponse> {
  const agent = new Agent({ connect: { ...(req.ca ? { ca: req.ca } : {}) } });
  try {
    return await call<RegisterResponse>(agent, new URL('/v1/register', req.relayUrl), 'POST', { token: req.token, csr: req.csr, name: req.name, version: req.version });
  } finally {
    await agent.close();
  }
}

/** Authenticated calls with the connector's current certificate. */
export class RelayClient {
  private agent: Agent;
  private readonly relayUrl: string;
  private readonly version: string;

  constructor(relayUrl: string, credentials: Credentials, version: string) {
    this.relayUrl = relayUrl;
    this.version = version;
    this.agent = RelayClient.agentFor(credentials);
  }

  private static agentFor(c: Credentials): Agent {
    return new Agent({ connect: { cert: c.cert, key: c.key, ...(c.ca ? { ca: c.ca } : {}) }, keepAliveTimeout: 10_000 });
  }

  setCredentials(credentials: Credentials): void {
    const old = this.agent;
    this.agent = RelayClient.agentFor(credentials);
    void old.close().catch(() => undefined);
  }

  pullConfig(): Promise<ConnectorConfig> {
    return call<ConnectorConfig>(this.agent, new URL('/v1/connector/config', this.relayUrl), 'GET', undefined, { 'x-drawbridge-connector-version': this.version });
  }

  renew(csr: string): Promise<{ certificate: string; caChain: string; notAfter: number }> {
    return call(this.agent, new URL('/v1/connector/renew', this.relayUrl), 'POST', { csr });
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
