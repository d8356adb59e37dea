/**
 * Loads the relay configuration once, at start: defaults, then the config file
 * (JSON or YAML), then `DRAWBRIDGE_*` environment variables, then command-line
 * flags. Every value is validated here; errors name the key and the source.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DrawbridgeError, parseDuration, parseSize } from '@drawbridge/shared';
import { parse as parseYaml } from 'yaml';
import { trustedProxies } from '../proxy/client-info.ts';
import { envName, SETTING_BY_KEY, SETTINGS, type Setting } from './config-schema.ts';

export interface ListenAddr {
  host: string;
  port: number;
}

export interface RelayConfig {
  dataDir: string;
  database: string | null;
  log: { level: string };
  public: { listen: ListenAddr; tlsCertFile: string | null; tlsKeyFile: string | null; trustedProxies: string[]; maxHeaderSize: number; headersTimeout: number; keepAliveTimeout: number; unreadBodyLinger: number };
  connector: {
    listen: ListenAddr;
    url: string | null;
    hosts: string[];
    tlsCertFile: string | null;
    tlsKeyFile: string | null;
    connections: number;
    configPullInterval: number;
    rotationAge: number;
    certificateValidity: number;
    registrationRate: number;
  };
  ca: { certFile: string | null; keyFile: string | null };
  auth: { signInHost: string | null; sessionMaxAge: number; loginAttemptsPerUser: number; loginAttemptsPerAddress: number; assertionIssuer: string; assertionTtl: number; assertionReuse: number };
  oidc: { issuer: string | null; clientId: string | null; clientSecret: string | null; scopes: string[]; groupsClaim: string; fetchUserinfo: boolean; providerLogout: boolean };
  cluster: { advertiseUrl: string | null };
  admin: { listen: ListenAddr };
  tunnel: { maxStreams: number; streamWindow: number; maxStreamWindow: number; windowBudget: number; maxFrameSize: number; pingInterval: number; pingTimeout: number };
  queue: { maxLength: number; maxWait: number };
  shutdown: { grace: number };
}

export class ConfigError extends DrawbridgeError {
  constructor(message: string) {
    super('ERR_CONFIG', message);
  }
}

export function parseListen(value: string): ListenAddr {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error('expected host:port, like 0.0.0.0:8080 or [::]:8443');
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function convert(s: Setting, raw: unknown): unknown {
  if (raw === null || raw === '') {
    if (s.default === null) return null;
    throw new Error('must not be empty');
  }
  const str = (): string => {
    if (typeof raw !== 'string' && typeof raw !== 'number') throw new Error('expected a string');
    return String(raw);
  };
  const bounded = (n: number): number => {
    if (s.min !== undefined && n < s.min) throw new Error(`must be at least ${s.min}`);
    if (s.max !== undefined && n > s.max) throw new Error(`must be at most ${s.max}`);
    return n;
  };
  switch (s.type) {
    case 'string':
    case 'path':
      return str();
    case 'url': {
      const u = new URL(str());
      if (u.protocol !== 'https:') throw new Error('must be an https:// URL');
      return u.toString().replace(/\/$/, '');
    }
    case 'enum': {
      const v = str();
      if (!s.values!.includes(v)) throw new Error(`must be one of ${s.values!.join(', ')}`);
      return v;
    }
    case 'int': {
      const n = typeof raw === 'number' ? raw : Number(str());
      if (!Number.isInteger(n)) throw new Error('expected a whole number');
      return bounded(n);
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (['true', '1', 'yes'].includes(str())) return true;
      if (['false', '0', 'no'].includes(str())) return false;
      throw new Error('expected true or false');
    case 'duration':
      return bounded(parseDuration(raw as string | number));
    case 'size':
      return bounded(parseSize(raw as string | number));
    case 'listen':
      return parseListen(str());
    case 'strings':
      if (Array.isArray(raw)) return raw.map(String);
      return str()
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
  }
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let obj = target;
  for (const p of parts.slice(0, -1)) obj = (obj[p] ??= {}) as Record<string, unknown>;
  obj[parts.at(-1)!] = value;
}

function flatten(obj: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !SETTING_BY_KEY.has(key)) out.push(...flatten(v as Record<string, unknown>, key));
    else out.push([key, v]);
  }
  return out;
}

export interface LoadOptions {
  file?: string | undefined;
  env?: Record<string, string | undefined>;
  /** Flag values, by setting key (e.g. `{ dataDir: '/var/lib/drawbridge' }`). */
  overrides?: Record<string, unknown>;
}

/** Builds a validated RelayConfig, or throws ConfigError naming the key, the source and the problem. */
export function loadRelayConfig(opts: LoadOptions = {}): RelayConfig {
  const values = new Map<string, { value: unknown; source: string }>();
  for (const s of SETTINGS) values.set(s.key, { value: s.default, source: 'default' });
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = opts.file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw new ConfigError(`config file ${opts.file} is not valid ${opts.file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${opts.file} must hold an object of settings`);
      for (const [key, value] of flatten(doc as Record<string, unknown>)) {
        if (!SETTING_BY_KEY.has(key)) throw new ConfigError(`unknown setting ${key} in ${opts.file}; see docs/configuration.md for the settings`);
        values.set(key, { value, source: opts.file });
      }
    }
  }
  const env = opts.env ?? {};
  const known = new Set(SETTINGS.map((s) => envName(s.key)));
  for (const name of Object.keys(env)) {
    if (name.startsWith('DRAWBRIDGE_') && !known.has(name) && !IGNORED_ENV.has(name)) throw new ConfigError(`unknown environment variable ${name}; see docs/configuration.md`);
  }
  for (const s of SETTINGS) {
    const v = env[envName(s.key)];
    if (v !== undefined) values.set(s.key, { value: v, source: `environment ${envName(s.key)}` });
  }
  for (const [key, value] of Object.entries(opts.overrides ?? {})) {
    if (value !== undefined) values.set(key, { value, source: 'command line' });
  }
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const { value, source } = values.get(s.key)!;
    try {
      setPath(out, s.key, convert(s, value));
    } catch (err) {
      throw new ConfigError(`setting ${s.key} (from ${source}): ${(err as Error).message}`);
    }
  }
  const config = out as unknown as RelayConfig;
  config.dataDir = resolve(config.dataDir);
  if ((config.public.tlsCertFile === null) !== (config.public.tlsKeyFile === null)) throw new ConfigError('public.tlsCertFile and public.tlsKeyFile go together: set both or neither');
  if ((config.connector.tlsCertFile === null) !== (config.connector.tlsKeyFile === null)) throw new ConfigError('connector.tlsCertFile and connector.tlsKeyFile go together: set both or neither');
  if ((config.ca.certFile === null) !== (config.ca.keyFile === null)) throw new ConfigError('ca.certFile and ca.keyFile go together: set both or neither');
  if (config.connector.certificateValidity <= config.connector.rotationAge) throw new ConfigError('connector.certificateValidity must be longer than connector.rotationAge, or certificates expire before they rotate');
  if (config.tunnel.pingTimeout <= config.tunnel.pingInterval) throw new ConfigError('tunnel.pingTimeout must be longer than tunnel.pingInterval');
  try {
    trustedProxies(config.public.trustedProxies);
  } catch (err) {
    throw new ConfigError(`setting public.trustedProxies: ${(err as Error).message}`);
  }
  if (config.cluster.advertiseUrl !== null && !/^https?:\/\/[^/]+\/?$/.test(config.cluster.advertiseUrl)) {
    throw new ConfigError('cluster.advertiseUrl must be an http(s) URL with host and port only, like http://10.0.0.4:8080');
  }
  if ((config.oidc.issuer === null) !== (config.oidc.clientId === null)) throw new ConfigError('oidc.issuer and oidc.clientId go together: set both to enable OpenID Connect sign-in, or neither');
  if (config.oidc.issuer !== null && !/^https?:\/\//.test(config.oidc.issuer)) throw new ConfigError('oidc.issuer must be an http(s) URL');
  if (config.auth.signInHost !== null && !/^[a-z0-9.-]+$/i.test(config.auth.signInHost)) throw new ConfigError('auth.signInHost must be a bare host name, like login.example.com (no scheme, no port)');
  if (config.database !== null && !/^postgres(ql)?:\/\//.test(config.database)) throw new ConfigError('database must be a postgres:// URL, or empty for SQLite in the data dir');
  return config;
}

/** Variables that are not settings but are read by the programs (documented with the CLI). */
const IGNORED_ENV = new Set([
  'DRAWBRIDGE_CONFIG',
  'DRAWBRIDGE_ADMIN_URL',
  'DRAWBRIDGE_ADMIN_TOKEN',
  'DRAWBRIDGE_TEST_LOG',
  // Connector variables, harmless when both programs share an environment.
  'DRAWBRIDGE_STATE_DIR',
  'DRAWBRIDGE_METRICS_LISTEN',
  'DRAWBRIDGE_RELAY_URL',
  'DRAWBRIDGE_REGISTRATION_TOKEN',
  'DRAWBRIDGE_CA_PIN',
]);
