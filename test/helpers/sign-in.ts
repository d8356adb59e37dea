/**
 * Signs a local user in through the relay's real sign-in form (as a script
 * would, without a browser) and returns the Cookie header that carries the
 * session for the app host. `checkPath` is then fetched with it and must
 * answer 200.
 */
const RELAY_PATH = '/.well-known/drawbridge/';

function cookiesOf(res: Response): string[] {
  return res.headers.getSetCookie().map((c) => c.split(';', 1)[0]!);
}

export async function signInLocal(publicUrl: string, host: string, user: string, password: string, checkPath = '/'): Promise<string> {
  // fetch() cannot set Host, so talk to the relay with node:http instead.
  const { request } = await import('node:http');
  const call = (method: string, path: string, headers: Record<string, string>, body?: string): Promise<Response> =>
    new Promise((resolve, reject) => {
      const req = request(`${publicUrl}${path}`, { method, headers: { host, ...headers }, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) h.append(k, one);
          resolve(new Response(res.statusCode === 204 || res.statusCode === 304 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: h }));
        });
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('sign-in timed out')));
      req.end(body);
    });
  const form = await call('GET', `${RELAY_PATH}signin?rd=%2F`, {});
  const html = await form.text();
  const cookies = cookiesOf(form);
  const hidden = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden.set(m[1]!, m[2]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"'));
  hidden.set('username', user);
  hidden.set('password', password);
  const done = await call('POST', `${RELAY_PATH}signin`, { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies.join('; ') }, hidden.toString());
  const session = cookiesOf(done).filter((c) => !c.endsWith('='));
  if (done.status >= 400 || session.length === 0) throw new Error(`local sign-in failed: ${done.status} ${done.headers.get('x-drawbridge-error') ?? ''}`);
  // Check the cookie opens the app before anyone relies on it.
  const check = await call('GET', checkPath, { cookie: session.join('; ') });
  if (check.status !== 200) throw new Error(`signed-in request answered ${check.status} ${check.headers.get('x-drawbridge-error') ?? ''}`);
  return session.join('; ');
}
