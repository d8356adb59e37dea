/**
 * The seam where pre-authentication plugs into the request path. The gate
 * decides, per request, whether it may go on and with which identity.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppConfig } from '@drawbridge/shared';
import type { RequestIdentity } from './proxy/http-proxy.ts';

export interface AccessGate {
  /**
   * Returns the identity to forward, or undefined when the gate has answered
   * the request itself (a sign-in redirect, a 403 page). May be synchronous so
   * passthrough apps pay nothing.
   */
  check(app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string): RequestIdentity | undefined | Promise<RequestIdentity | undefined>;
  /** The same for an upgrade request, answering on the raw socket. */
  checkUpgrade(app: AppConfig, req: IncomingMessage, socket: Duplex, requestId: string): RequestIdentity | undefined | Promise<RequestIdentity | undefined>;
}

const ANONYMOUS: RequestIdentity = { meta: [] };

/** Lets every request through unauthenticated: the `passthrough` mode. */
export const passthroughGate: AccessGate = {
  check: () => ANONYMOUS,
  checkUpgrade: () => ANONYMOUS,
};
