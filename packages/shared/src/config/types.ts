/**
 * Configuration that travels from the relay to connectors (flow 2 of the
 * design). The relay's store is the source of truth; the connector receives
 * these objects on each pull and caches the last good copy.
 */

export type Preauth = 'oidc' | 'local' | 'passthrough';

/** A header-based SSO rule: `name` gets `value` with placeholders filled ({email}, {sub}, {name}, {groups}, {claim:NAME}). */
export interface HeaderRule {
  name: string;
  value: string;
}

export interface Assignment {
  kind: 'user' | 'group';
  id: string;
}

/** Timeouts in milliseconds; 0 means "no limit" only where documented. */
export interface AppTimeouts {
  /** TCP/TLS connect to the internal URL. */
  connectMs: number;
  /** From request sent to response head received (the reference product's 85 s). */
  headMs: number;
  /** Longest silence on a body in either direction. 0 = none (long polls, SSE). */
  idleMs: number;
  /**
   * Longest a whole HTTP exchange may take, from the relay letting the
   * request through its access check to the response's last byte (queue
   * wait, upload and download included). 0 = none, the default: event streams, long polls and large
   * downloads would otherwise be cut. Not applied to WebSocket upgrades.
   * The relay enforces it (connectors do not read it).
   */
  totalMs: number;
}

export interface AppLimits {
  /** Largest request body accepted, in bytes. 0 = unlimited. */
  maxRequestBodyBytes: number;
}

export interface AppConfig {
  id: string;
  name: string;
  /** Public host name users reach, lower case, no port (`hello.example.com`). */
  externalHost: string;
  /** Where the connector sends requests (`http://10.0.0.5:8080/base`). */
  internalUrl: string;
  /** Connector group id that serves this app. */
  group: string;
  preauth: Preauth;
  /** Value of Host sent to the app; null keeps the external host. */
  hostHeader: string | null;
  headers: HeaderRule[];
  assignments: Assignment[];
  timeouts: AppTimeouts;
  limits: AppLimits;
  /** Skip TLS verification of an https internal URL (self-signed internal apps). */
  insecureSkipVerify: boolean;
  /** Serve `/robots.txt` with `Disallow: /` from the relay. */
  denyRobots: boolean;
  /**
   * For `oidc` apps: the audience an `Authorization: Bearer` JWT from the
   * provider must carry to be accepted without a session cookie (native
   * clients, APIs). Absent or null: bearer tokens are not accepted.
   */
  bearerAudience?: string | null;
}

export const DEFAULT_APP_TIMEOUTS: AppTimeouts = { connectMs: 10_000, headMs: 85_000, idleMs: 0, totalMs: 0 };
export const DEFAULT_APP_LIMITS: AppLimits = { maxRequestBodyBytes: 0 };

/** What `GET /v1/connector/config` returns to a connector. */
export interface ConnectorConfig {
  connectorId: string;
  connectorName: string;
  group: { id: string; name: string };
  /** Changes whenever anything in this document changes. */
  revision: string;
  apps: AppConfig[];
  /** Tunnel connections the connector should keep open. */
  connections: number;
  /** Periodic pull interval backing up change notices. */
  pullIntervalMs: number;
  /** Certificate age at which the connector renews. */
  rotationAgeMs: number;
}
