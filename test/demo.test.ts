/**
 * The README's first command, run as a user would: `pnpm demo` in a child
 * process; sign in with the credentials it prints and get the header page
 * through the tunnel; Ctrl-C; run it again on the same directory.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { client } from './helpers/harness.ts';
import { formFields, UserAgent } from './helpers/user-agent.ts';

const repo = new URL('..', import.meta.url).pathname;
const dir = join(mkdtempSync(join(tmpdir(), 'drawbridge-demo-test-')), 'demo');

interface Started {
  proc: ChildProcess;
  output: () => string;
  url: string;
  password: string;
}

async function startDemo(): Promise<Started> {
  const proc = spawn('pnpm', ['--silent', 'demo'], {
    cwd: repo,
    env: {
      ...process.env,
      DRAWBRIDGE_DEMO_DIR: dir,
      DRAWBRIDGE_PUBLIC_LISTEN: '127.0.0.1:0',
      DRAWBRIDGE_CONNECTOR_LISTEN: '127.0.0.1:0',
      DRAWBRIDGE_ADMIN_LISTEN: '127.0.0.1:0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  const ready = Promise.withResolvers<void>();
  const onData = (d: string): void => {
    out += d;
    if (out.includes('Press Ctrl-C to stop.')) ready.resolve();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  proc.once('exit', () => ready.reject(new Error(`the demo stopped before it was ready:\n${out}`)));
  await ready.promise;
  const url = /open +(http:\/\/\S+)/.exec(out)![1]!;
  const password = /password +(\S+)/.exec(out)![1]!;
  return { proc, output: () => out, url, password };
}

async function stop(demo: Started): Promise<number> {
  const exited = once(demo.proc, 'exit');
  demo.proc.kill('SIGINT');
  const [code] = (await exited) as [number];
  return code;
}

async function signInAndView(demo: Started): Promise<string> {
  const ua = new UserAgent();
  const form = await ua.navigate(demo.url);
  assert.equal(form.status, 200);
  const page = await ua.navigate(new URL('/.well-known/drawbridge/signin', demo.url).href, { form: { ...formFields(form.body), username: 'demo', password: demo.password } });
  assert.equal(page.status, 200, page.body.slice(0, 500));
  return page.body;
}

describe('pnpm demo', () => {
  let current: Started | undefined;
  after(async () => {
    if (current && current.proc.exitCode === null) current.proc.kill('SIGKILL');
    await client.close();
  });

  it('prints a URL and an account, and the app is reachable through the tunnel after sign-in', async () => {
    current = await startDemo();
    assert.match(current.output(), /Creating /);
    assert.match(current.output(), /registering with https:\/\//);
    const page = await signInAndView(current);
    assert.match(page, /Header echo/);
    assert.match(page, /Signed in as <strong>demo<\/strong>/);
    assert.match(page, /x-remote-groups<\/td><td>demo-users/i);
    assert.match(page, /x-drawbridge-assertion/i);
    const code = await stop(current);
    assert.equal(code, 0, current.output());
    assert.match(current.output(), /Stopped\./);
  });

  it('runs again on the same directory, says so, and works with a new password', async () => {
    current = await startDemo();
    assert.match(current.output(), /Reusing /);
    // Port 0 gave the relay a new connector port: the demo notices and registers again.
    assert.match(current.output(), /registering again|already registered/);
    assert.match(await signInAndView(current), /Signed in as <strong>demo<\/strong>/);
    assert.equal(await stop(current), 0);
  });
});
