/**
 * A small browser stand-in for HTTP-level tests of sign-in: a cookie jar per
 * host (host-only cookies, paths, Max-Age=0), manual redirects, and `*.test`
 * host names sent to the relay on 127.0.0.1 with the right Host header.
 */
import { request } from 'undici';
import { client } from './harness.ts';

interface Cookie {
  name: string;
  value: string;
  path: string;
}

export interface Page {
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Every URL visited, redirects included. */
  chain: string[];
}

export function header(res: { headers: Record<string, string | string[] | undefined> }, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export class UserAgent {
  /** host name → cookies. */
  readonly jar = new Map<string, Cookie[]>();

  cookies(host: string): Cookie[] {
    return this.jar.get(host) ?? [];
  }

  setCookie(host: string, name: string, value: string, path = '/'): void {
    const list = this.cookies(host).filter((c) => !(c.name === name && c.path === path));
    list.push({ name, value, path });
    this.jar.set(host, list);
  }

  private store(host: string, setCookie: string | string[] | undefined): void {
    for (const line of [setCookie ?? []].flat()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      let path = '/';
      let remove = false;
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k!.toLowerCase() === 'path') path = v!;
        if (k!.toLowerCase() === 'max-age' && Number(v) <= 0) remove = true;
      }
      const list = this.cookies(host).filter((c) => !(c.name === name && c.path === path));
      if (!remove) list.push({ name, value, path });
      this.jar.set(host, list);
    }
  }

  private cookieHeader(url: URL): string | undefined {
    const list = this.cookies(url.hostname).filter((c) => url.pathname.startsWith(c.path));
    return list.length ? list.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  /** One request, no redirect following. */
  async fetch(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Page> {
    const u = new URL(url);
    const target = u.hostname.endsWith('.test') || u.hostname.endsWith('.localhost') ? `${u.protocol}//127.0.0.1:${u.port}${u.pathname}${u.search}` : url;
    const headers: Record<string, string> = { host: u.host, ...init.headers };
    const cookie = this.cookieHeader(u);
    if (cookie) headers.cookie = cookie;
    let body: string | null = null;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await request(target, { method: (init.method ?? (init.form ? 'POST' : 'GET')) as 'GET', headers, body, dispatcher: client });
    const text = await res.body.text();
    this.store(u.hostname, res.headers['set-cookie']);
    return { url, status: res.statusCode, headers: res.headers, body: text, chain: [url] };
  }

  /** Follows redirects (GET after each) until a non-redirect answer or `stopAt` matches a Location. */
  async navigate(url: string, init: Parameters<UserAgent['fetch']>[1] = {}, stopAt?: (location: string) => boolean): Promise<Page> {
    const chain: string[] = [];
    let page = await this.fetch(url, init);
    chain.push(url);
    for (let i = 0; i < 20 && page.status >= 300 && page.status < 400; i++) {
      const location = new URL(header(page, 'location')!, page.url).href;
      if (stopAt?.(location)) return { ...page, chain: [...chain, location] };
      chain.push(location);
      page = await this.fetch(location);
    }
    return { ...page, chain };
  }
}

/** Values of a hidden or text input in an HTML page. */
export function formFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [, attrs] of html.matchAll(/<input([^>]*)>/g)) {
    const name = /\sname="([^"]+)"/.exec(attrs!)?.[1];
    if (name) out[name] = unescapeHtml(/\svalue="([^"]*)"/.exec(attrs!)?.[1] ?? '');
  }
  return out;
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
export function unescapeHtml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e]!);
}
