/**
 * The relay's HTTP API for connectors, on the connector listener:
 *   POST /v1/register          token + CSR → certificate (no client certificate yet)
 *   GET  /v1/connector/config  the connector's configuration (mTLS)
 *   POST /v1/connector/renew   CSR → new certificate over the current identity (mTLS)
 * See docs/protocol.md ("Connector API").
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { type ConnectorConfig, DrawbridgeError } from '@drawbridge/shared';
import type { Logger } from 'pino';
import type { CertificateAuthority } from '../ca/index.ts';
import { hashToken, type NewAuditEvent, type Store } from '../store/index.ts';
import { certificateFailure, type ConnectorAuthenticator, type ConnectorIdentity } from '../tunnel/connector-listener.ts';
import type { RelayConfig } from './config.ts';
import { RateLimiter, readJson, sendError, sendJson } from './http-json.ts';

export interface ConnectorApiOptions {
  store: Store;
  ca: CertificateAuthority;
  config: RelayConfig;
  authenticator: ConnectorAuthenticator;
  audit(event: NewAuditEvent): Promise<void>;
  now(): number;
  logger: Logger;
}

const STATUS: Record<string, number> = {
  ERR_TOKEN_UNKNOWN: 401,
  ERR_TOKEN_EXPIRED: 401,
  ERR_TOKEN_USED_UP: 401,
  ERR_TOKEN_GROUP_DELETED: 409,
  ERR_CSR_MALFORMED: 400,
  ERR_CSR_WEAK_KEY: 400,
  ERR_CSR_BAD_SIGNATURE: 400,
  ERR_CSR_SUBJECT: 400,
  ERR_BAD_REQUEST: 400,
  ERR_BAD_JSON: 400,
  ERR_BODY_TOO_LARGE: 413,
  ERR_CERT_REQUIRED: 401,
  ERR_CERT_EXPIRED: 401,
  ERR_CERT_NOT_YET_VALID: 401,
  ERR_CERT_UNTRUSTED: 401,
  ERR_CERT_REVOKED: 403,
  ERR_CONNECTOR_UNKNOWN: 403,
  ERR_CONNECTOR_REVOKED: 403,
};

function str(body: unknown, key: string, max: number, required = true): string | undefined {
  const v = (body as Record<string, unknown> | null)?.[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new DrawbridgeError('ERR_BAD_REQUEST', `field ${key} must be a string of 1 to ${max} characters`);
  return v;
}

/** Builds the configuration document a connector pulls; the revision changes whenever any of it does. */
export async function connectorConfigFor(store: Store, config: RelayConfig, identity: ConnectorIdentity): Promise<ConnectorConfig> {
  const [group, apps] = await Promise.all([store.getGroup(identity.groupId), store.listApps({ groupId: identity.groupId })]);
  const doc: Omit<ConnectorConfig, 'revision'> = {
    connectorId: identity.connectorId,
    connectorName: identity.connectorName,
    group: { id: identity.groupId, name: group?.name ?? identity.groupId },
    apps: apps.sort((a, b) => a.id.localeCompare(b.id)),
    connections: config.connector.connections,
    pullIntervalMs: config.connector.configPullInterval,
    rotationAgeMs: config.connector.rotationAge,
  };
  const revision = createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 16);
  return { ...doc, revision };
}

export function createConnectorApi(opts: ConnectorApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const limiter = new RateLimiter(opts.config.connector.registrationRate, 60_000);
  const validityDays = opts.config.connector.certificateValidity / 86_400_000;

  async function identify(req: IncomingMessage): Promise<ConnectorIdentity> {
    const socket = req.socket as TLSSocket;
    const failure = certificateFailure(socket);
    if (failure) throw failure;
    return opts.authenticator.authenticate(socket.getPeerCertificate(), req);
  }

  async function register(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const address = req.socket.remoteAddress ?? '';
    const wait = limiter.take(address, opts.now());
    if (wait > 0) {
      await opts.audit({ type: 'connector.registration', outcome: 'refused', address, details: { code: 'ERR_RATE_LIMITED' } });
      sendError(res, 429, 'ERR_RATE_LIMITED', `too many registration attempts from ${address}; try again in ${wait} s`, { 'retry-after': String(wait) });
      return;
    }
    const body = await readJson(req, 64 * 1024);
    const token = str(body, 'token', 512)!;
    const csr = str(body, 'csr', 32 * 1024)!;
    const name = str(body, 'name', 128, false) ?? 'connector';
    const version = str(body, 'version', 64, false) ?? 'unknown';
    try {
      const reg = await opts.store.registerConnector({ tokenHash: hashToken(token), now: opts.now(), name, version }, (connector) => {
        const issued = opts.ca.signConnectorCsr(csr, { connectorId: connector.id, groupId: connector.groupId, validityDays, now: new Date(opts.now()) });
        return { ...issued, notBefore: issued.notBefore.getTime(), notAfter: issued.notAfter.getTime() };
      });
      const group = await opts.store.getGroup(reg.connector.groupId);
      await opts.audit({ type: 'connector.registered', outcome: 'success', actor: reg.connector.id, connector: reg.connector.id, address, details: { name, version, serial: reg.certificate.serial, token: reg.token.id } });
      opts.logger.info({ connector: reg.connector.id, name, group: reg.connector.groupId }, 'connector registered');
      sendJson(res, 201, {
        connectorId: reg.connector.id,
        name: reg.connector.name,
        group: { id: reg.connector.groupId, name: group?.name ?? reg.connector.groupId },
        certificate: reg.issued.certPem,
        caChain: reg.issued.caChainPem,
        notAfter: reg.certificate.notAfter,
      });
    } catch (err) {
      const code = err instanceof DrawbridgeError ? err.code : 'ERR_INTERNAL';
      await opts.audit({ type: 'connector.registration', outcome: 'refused', address, details: { code, name } });
      throw err;
    }
  }

  async function pullConfig(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const identity = await identify(req);
    const version = req.headers['x-drawbridge-connector-version'];
    await opts.store.touchConnector(identity.connectorId, { at: opts.now(), ...(typeof version === 'string' ? { version: version.slice(0, 64) } : {}) });
    sendJson(res, 200, await connectorConfigFor(opts.store, opts.config, identity));
  }

  async function renew(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const identity = await identify(req);
    const body = await readJson(req, 64 * 1024);
    const csr = str(body, 'csr', 32 * 1024)!;
    try {
      const issued = opts.ca.signConnectorCsr(csr, { connectorId: identity.connectorId, groupId: identity.groupId, validityDays, now: new Date(opts.now()) });
      const cert = await opts.store.addCertificate({ connectorId: identity.connectorId, serial: issued.serial, notBefore: issued.notBefore.getTime(), notAfter: issued.notAfter.getTime() });
      await opts.audit({ type: 'connector.rotated', outcome: 'success', actor: identity.connectorId, connector: identity.connectorId, address: req.socket.remoteAddress ?? null, details: { oldSerial: identity.serial, serial: cert.serial } });
      sendJson(res, 200, { certificate: issued.certPem, caChain: issued.caChainPem, notAfter: cert.notAfter });
    } catch (err) {
      const code = err instanceof DrawbridgeError ? err.code : 'ERR_INTERNAL';
      await opts.audit({ type: 'connector.rotation', outcome: 'refused', connector: identity.connectorId, address: req.socket.remoteAddress ?? null, details: { code } });
      throw err;
    }
  }

  return (req, res) => {
    const path = new URL(req.url ?? '/', 'https://relay').pathname;
    let handler: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;
    if (req.method === 'POST' && path === '/v1/register') handler = register;
    else if (req.method === 'GET' && path === '/v1/connector/config') handler = pullConfig;
    else if (req.method === 'POST' && path === '/v1/connector/renew') handler = renew;
    if (!handler) {
      sendError(res, 404, 'ERR_NOT_FOUND', `no ${req.method ?? ''} ${path} here; see docs/protocol.md for the connector API`);
      return;
    }
    handler(req, res).catch((err: unknown) => {
      if (res.headersSent) return;
      if (err instanceof DrawbridgeError) {
        sendError(res, STATUS[err.code] ?? 400, err.code, err.message);
        return;
      }
      opts.logger.error({ err }, 'connector API failed');
      sendError(res, 500, 'ERR_INTERNAL', 'the relay failed to handle the request; see its log');
    });
  };
}
