/**
 * The CLI's way to the relay: the admin API of the running relay, found from
 * the config (`admin.listen`) or DRAWBRIDGE_ADMIN_URL, authenticated with the
 * credential in the data dir or DRAWBRIDGE_ADMIN_TOKEN.
 */
import { DrawbridgeError } from '@drawbridge/shared';
import { readAdminCredential } from '../admin/credential.ts';
import { loadRelayConfig, type ListenAddr } from '../server/config.ts';
import { CliError } from './output.ts';

export interface CommonOptions {
  dataDir?: string;
  config?: string;
}

/** How long one admin call may take before the CLI gives up. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The URL a client uses for a listen address: wildcard addresses mean "this host". */
export function adminUrlOf(listen: ListenAddr): string {
  const host = listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

export class AdminClient {
  readonly url: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    this.url = url.replace(/\/+$/, '');
    this.#token = token;
  }

  /** Calls the API; a non-2xx answer becomes a `CliError` with the API's code and message. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
      throw new CliError(
        timedOut ? 'ERR_ADMIN_TIMEOUT' : 'ERR_ADMIN_UNREACHABLE',
        timedOut
          ? `the relay admin API at ${this.url} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`
          : `cannot reach the relay admin API at ${this.url}: is \`drawbridge-relay serve\` running? (set DRAWBRIDGE_ADMIN_URL or --config if it listens elsewhere)`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new CliError('ERR_ADMIN_BAD_ANSWER', `${this.url} answered ${res.status} with something that is not JSON; is that the relay's admin address?`);
    }
    if (res.ok) return parsed as T;
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`;
    let message = typeof error?.message === 'string' ? error.message : `the relay admin API answered ${res.status}`;
    if (res.status === 401) message = `the relay at ${this.url} refused the admin token: use the --data-dir of the running relay, or set DRAWBRIDGE_ADMIN_TOKEN`;
    throw new CliError(code, message);
  }
}

/**
 * The client for the relay these options point at. Environment variables win
 * over the config so scripts and containers can reach a relay elsewhere.
 */
export async function connect(options: CommonOptions): Promise<AdminClient> {
  let url = process.env.DRAWBRIDGE_ADMIN_URL || undefined;
  let token = process.env.DRAWBRIDGE_ADMIN_TOKEN || undefined;
  if (url === undefined || token === undefined) {
    const config = loadRelayConfig({ file: options.config, env: process.env, overrides: { dataDir: options.dataDir } });
    url ??= adminUrlOf(config.admin.listen);
    token ??= await readAdminCredential(config.dataDir);
  }
  return new AdminClient(url, token);
}

/** The one-line reason for any error: its message and, for coded errors, the code. */
export function describeError(err: unknown): string {
  if (err instanceof DrawbridgeError) return `${err.message} (${err.code})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
