/**
 * The listener connectors dial: TLS that asks for a client certificate, the
 * relay's connector HTTP API (registration, config pull, renewal) and the
 * WebSocket tunnel. The tunnel upgrade is authenticated before the WebSocket
 * handshake completes: no certificate, a bad one or a revoked one never gets a
 * session. This is the only file of the relay that imports `ws`.
 */
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { CloseCode, DrawbridgeError, Session, maxMessageSize, type SessionLimits } from '@drawbridge/shared';
import { limitTurns, webSocketTransport } from '@drawbridge/shared/node';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TunnelConnection, TunnelRegistry } from './registry.ts';

export const TUNNEL_PATH = '/v1/tunnel';

/** Who is at the other end of a tunnel, as established from its certificate. */
export interface ConnectorIdentity {
  connectorId: string;
  connectorName: string;
  groupId: string;
  serial: string;
  /** Connector software version, from the `x-drawbridge-connector-version` upgrade header. */
  version?: string;
}

/**
 * Decides whether a client certificate may open a tunnel. Throws a
 * DrawbridgeError (ERR_CERT_*) to refuse; the code goes back to the connector.
 */
export interface ConnectorAuthenticator {
  authenticate(cert: PeerCertificate, req: IncomingMessage): Promise<ConnectorIdentity> | ConnectorIdentity;
}

/** Maps Node's TLS verification failure to a stable code and a message an operator can act on. */
export function certificateFailure(socket: TLSSocket): DrawbridgeError | undefined {
  if (socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) {
    return new DrawbridgeError('ERR_CERT_REQUIRED', 'a client certificate is required: register the connector first (drawbridge-connector register)');
  }
  const reason = String(socket.authorizationError ?? 'unknown');
  if (reason === 'CERT_HAS_EXPIRED') return new DrawbridgeError('ERR_CERT_EXPIRED', 'the connector certificate has expired: register the connector again');
  if (reason === 'CERT_NOT_YET_VALID') return new DrawbridgeError('ERR_CERT_NOT_YET_VALID', 'the connector certificate is not valid yet: check the clocks of connector and relay');
  return new DrawbridgeError('ERR_CERT_UNTRUSTED', `the connector certificate was not issued by this relay (${reason}): register the connector with this relay`);
}

/** Accepts any certificate the relay's CA issued: subject CN = connector id, O = group id. */
export const chainAuthenticator: ConnectorAuthenticator = {
  authenticate(cert) {
    const cn = cert.subject?.CN;
    const o = cert.subject?.O;
    if (typeof cn !== 'string' || typeof o !== 'string') throw new DrawbridgeError('ERR_CERT_SUBJECT', 'the certificate subject does not name a connector and group');
    return { connectorId: cn, connectorName: cn, groupId: o, serial: cert.serialNumber.toLowerCase() };
  },
};

export interface ConnectorListenerOptions {
  tls: { cert: string; key: string; ca: string };
  registry: TunnelRegistry;
  authenticator: ConnectorAuthenticator;
  session: { limits: SessionLimits; pingIntervalMs: number; pingTimeoutMs: number; handshakeTimeoutMs: number };
  logger: Logger;
  /** The connector HTTP API (registration, config, renewal). Answers 404 when absent. */
  api?: (req: IncomingMessage, res: ServerResponse) => void;
  /** A tunnel joined or left; `notify` lets the relay tell connectors about changes. */
  onConnection?(conn: TunnelConnection, event: 'open' | 'close'): void;
}

const STATUS_FOR_CODE: Record<string, number> = { ERR_CERT_REVOKED: 403, ERR_CONNECTOR_UNKNOWN: 403 };

function refuseUpgrade(socket: Duplex, err: DrawbridgeError): void {
  const status = STATUS_FOR_CODE[err.code] ?? 401;
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Unauthorized'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export function createConnectorServer(opts: ConnectorListenerOptions): https.Server {
  const server = https.createServer(
    {
      cert: opts.tls.cert,
      key: opts.tls.key,
      ca: opts.tls.ca,
      requestCert: true,
      // Registration has no certificate yet; everything else checks `authorized`.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      noDelay: true,
    },
    (req, res) => {
      if (opts.api) opts.api(req, res);
      else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: 'no such endpoint' } }));
      }
    },
  );
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: maxMessageSize(opts.session.limits) });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const tlsSocket = socket as TLSSocket;
    if (new URL(req.url ?? '/', 'https://relay').pathname !== TUNNEL_PATH) {
      refuseUpgrade(socket, new DrawbridgeError('ERR_NOT_FOUND', `no tunnel endpoint here; connectors use ${TUNNEL_PATH}`));
      return;
    }
    const failure = certificateFailure(tlsSocket);
    if (failure) {
      opts.logger.warn({ code: failure.code, address: tlsSocket.remoteAddress }, 'tunnel refused');
      refuseUpgrade(socket, failure);
      return;
    }
    Promise.resolve()
      .then(() => opts.authenticator.authenticate(tlsSocket.getPeerCertificate(), req))
      .then(
        (identity) => {
          if (socket.destroyed) return;
          const version = req.headers['x-drawbridge-connector-version'];
          if (typeof version === 'string') identity = { ...identity, version };
          wss.handleUpgrade(req, socket, head, (ws) => attach(ws, tlsSocket, identity, tlsSocket.remoteAddress ?? ''));
        },
        (err: unknown) => {
          const e = err instanceof DrawbridgeError ? err : new DrawbridgeError('ERR_INTERNAL', 'the relay could not check the certificate');
          opts.logger.warn({ code: e.code, address: tlsSocket.remoteAddress }, 'tunnel refused');
          refuseUpgrade(socket, e);
        },
      );
  });

  function attach(ws: WebSocket, socket: TLSSocket, identity: ConnectorIdentity, remoteAddress: string): void {
    const log = opts.logger.child({ connector: identity.connectorId, group: identity.groupId });
    let conn: TunnelConnection | undefined;
    const session = new Session({
      role: 'relay',
      transport: webSocketTransport(ws, socket, { masked: false }),
      limits: opts.session.limits,
      agent: 'drawbridge-relay',
      pingIntervalMs: opts.session.pingIntervalMs,
      pingTimeoutMs: opts.session.pingTimeoutMs,
      handshakeTimeoutMs: opts.session.handshakeTimeoutMs,
      onReady: (peer, version) => {
        conn = {
          id: randomUUID(),
          connectorId: identity.connectorId,
          connectorName: identity.connectorName,
          groupId: identity.groupId,
          serial: identity.serial,
          version: identity.version,
          remoteAddress,
          connectedAt: Date.now(),
          session,
          close: (code, reason) => session.close(code, reason),
        };
        log.info({ agent: peer.agent, version, connection: conn.id }, 'tunnel connected');
        opts.registry.add(conn);
        opts.onConnection?.(conn, 'open');
      },
      onStreamCountChange: () => {
        if (conn) opts.registry.capacityChanged(conn.groupId);
      },
      onGoaway: (code, message) => log.info({ code, message }, 'connector is draining'),
      onHandlerError: (err, streamId) => log.error({ err, streamId }, 'request handler failed; its stream was reset'),
      onClose: (error) => {
        if (error) log.warn({ code: error.code, err: error.message }, 'tunnel closed');
        if (conn) {
          opts.registry.remove(conn);
          opts.onConnection?.(conn, 'close');
        }
      },
    });
    // A bulk transfer gets a bounded share of each turn of the event loop (shared/node/turns.ts).
    const spent = limitTurns(ws);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        session.close(CloseCode.PROTOCOL_ERROR, 'text message on the tunnel', new DrawbridgeError('ERR_TEXT_MESSAGE', 'the tunnel carries binary messages only'));
        return;
      }
      session.receive(data);
      spent(data.length);
    });
    ws.on('close', (code: number, reason: Buffer) => session.transportClosed(code, reason.toString()));
    ws.on('error', (err) => log.warn({ err: err.message }, 'tunnel socket error'));
    session.start();
  }

  return server;
}
