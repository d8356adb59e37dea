#!/usr/bin/env -S node --max-semi-space-size=16
/**
 * drawbridge-connector: register once, then run. Exit codes: 0 success,
 * 1 failure (one line on stderr says why and what to do), 2 usage error.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Command, CommanderError, Option } from 'commander';
import { DrawbridgeError } from '@drawbridge/shared';
import { tuneGcForStreaming } from '@drawbridge/shared/node';
import { pino } from 'pino';
import { CONNECTOR_VERSION } from '../agent.ts';
import { readState } from '../identity/index.ts';
import { registerConnector } from '../register.ts';
import { type ConnectorStatus, runService, STATUS_FILE } from '../service.ts';

// Before any traffic: see tuneGcForStreaming (DRAWBRIDGE_GC_TUNING=0 keeps V8's default).
tuneGcForStreaming();

const stateDirOption = (): Option =>
  new Option('--state-dir <dir>', 'directory with the key, certificate and cached configuration').env('DRAWBRIDGE_STATE_DIR').default('./drawbridge-connector');

function fail(err: unknown): never {
  const message = err instanceof DrawbridgeError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`drawbridge-connector: ${message}\n`);
  process.exit(1);
}

const program = new Command('drawbridge-connector')
  .description('Drawbridge connector: publishes internal applications through outbound tunnels to a relay')
  .version(CONNECTOR_VERSION)
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('register')
  .description('enrol this host with a relay, using a registration token from `drawbridge-relay token create`')
  .requiredOption('--relay <url>', "URL of the relay's connector listener, e.g. https://relay.example.com:8443")
  .addOption(new Option('--token <token>', 'registration token (visible in `ps`: prefer --token-file or the environment)').env('DRAWBRIDGE_REGISTRATION_TOKEN'))
  .option('--token-file <file>', 'read the registration token from this file')
  .option('--ca-pin <pin>', "sha256:<hex> of the relay's CA; required unless the relay has a publicly trusted certificate")
  .option('--name <name>', 'name shown in `drawbridge-relay connector list` (default: host name)')
  .option('--json', 'print the result as JSON')
  .addOption(stateDirOption())
  .action(async (o: { relay: string; token?: string; tokenFile?: string; caPin?: string; name?: string; json?: boolean; stateDir: string }) => {
    try {
      const stateDir = resolve(o.stateDir);
      const token = o.tokenFile ? (await readFile(o.tokenFile, 'utf8')).trim() : o.token;
      if (!token) {
        process.stderr.write('drawbridge-connector: register needs a token: --token-file FILE, DRAWBRIDGE_REGISTRATION_TOKEN or --token\n');
        process.exit(2);
      }
      const r = await registerConnector({
        relayUrl: o.relay,
        token,
        caPin: o.caPin,
        name: o.name,
        stateDir,
        progress: (line) => {
          if (!o.json) process.stderr.write(`… ${line}\n`);
        },
      });
      if (o.json) process.stdout.write(`${JSON.stringify({ id: r.connectorId, name: r.name, group: r.group, certificateNotAfter: new Date(r.notAfter).toISOString(), stateDir })}\n`);
      else process.stdout.write(`registered connector ${r.connectorId} (${r.name}) in group ${r.group.name}\nstart it with: drawbridge-connector run --state-dir ${stateDir}\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('run')
  .description('connect to the relay and serve requests until stopped (exit 3 when the relay refuses this connector for good)')
  .addOption(stateDirOption())
  .addOption(new Option('--log-level <level>', 'log level').env('DRAWBRIDGE_LOG_LEVEL').default('info'))
  .addOption(new Option('--metrics-listen <host:port>', 'serve Prometheus /metrics and /healthz on this local address').env('DRAWBRIDGE_METRICS_LISTEN'))
  .action(async (o: { stateDir: string; logLevel: string; metricsListen?: string }) => {
    try {
      let metricsListen: { host: string; port: number } | undefined;
      if (o.metricsListen) {
        const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(o.metricsListen);
        if (!m) throw new DrawbridgeError('ERR_USAGE', `--metrics-listen ${o.metricsListen} is not host:port (like 127.0.0.1:9464)`);
        metricsListen = { host: m[1] ?? m[2]!, port: Number(m[3]) };
      }
      const code = await runService({ stateDir: resolve(o.stateDir), logger: pino({ name: 'drawbridge-connector', level: o.logLevel }), metricsListen });
      process.exit(code);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('status')
  .description('show registration, certificate and connections of this connector')
  .addOption(stateDirOption())
  .option('--json', 'print as JSON')
  .action(async (o: { stateDir: string; json?: boolean }) => {
    try {
      const stateDir = resolve(o.stateDir);
      const state = await readState(stateDir);
      const cert = new X509Certificate(state.cert);
      const notBefore = Date.parse(cert.validFrom);
      const notAfter = Date.parse(cert.validTo);
      let running: ConnectorStatus | undefined;
      try {
        running = JSON.parse(await readFile(join(stateDir, STATUS_FILE), 'utf8')) as ConnectorStatus;
      } catch {
        running = undefined;
      }
      const alive = running !== undefined && isAlive(running.pid) && Date.now() - running.updatedAt < 30_000;
      const out = {
        id: state.connectorId,
        name: state.name,
        relay: state.relayUrl,
        group: running?.group ?? state.groupId,
        running: alive,
        connections: alive ? running!.connections : [],
        certificate: { serial: cert.serialNumber.toLowerCase(), ageDays: Math.floor((Date.now() - notBefore) / 86_400_000), notAfter: new Date(notAfter).toISOString() },
        lastConfigPull: running?.lastConfigPullAt ? new Date(running.lastConfigPullAt).toISOString() : null,
        configRevision: running?.configRevision ?? null,
        lastConfigError: running?.lastConfigError ?? null,
        metricsUrl: alive ? (running!.metricsUrl ?? null) : null,
      };
      if (o.json) {
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const ready = out.connections.filter((c) => c.state === 'ready').length;
      const rows: Array<[string, string]> = [
        ['connector', `${out.id ?? '?'} (${out.name ?? '?'})`],
        ['relay', out.relay],
        ['group', String(out.group ?? '?')],
        ['running', out.running ? `yes, ${ready}/${out.connections.length} tunnel connections ready` : 'no'],
        ['certificate', `age ${out.certificate.ageDays} days, expires ${out.certificate.notAfter}`],
        ['last config pull', out.lastConfigPull ?? 'never (is it running?)'],
      ];
      if (out.lastConfigError) rows.push(['last pull error', out.lastConfigError]);
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(17)} ${v}\n`);
    } catch (err) {
      fail(err);
    }
  });

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  fail(err);
}
