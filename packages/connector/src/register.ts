/**
 * `drawbridge-connector register`: one-time enrolment with an admin token. The
 * key pair is generated here and never leaves the host; only a CSR and the
 * token travel, and only to a relay that passed the pin check (or the system
 * trust store when no pin is given).
 */
import { hostname } from 'node:os';
import { DrawbridgeError } from '@drawbridge/shared';
import { CONNECTOR_VERSION } from './agent.ts';
import { generateIdentity, parsePin, writeStateFiles } from './identity/index.ts';
import { fetchPinnedCa, register } from './relay-api.ts';

export interface RegisterOptions {
  relayUrl: string;
  token: string;
  caPin?: string | undefined;
  name?: string | undefined;
  stateDir: string;
  /** Progress lines for a person watching. */
  progress?: (line: string) => void;
}

export interface Registered {
  connectorId: string;
  name: string;
  group: { id: string; name: string };
  notAfter: number;
}

export async function registerConnector(opts: RegisterOptions): Promise<Registered> {
  const say = opts.progress ?? (() => undefined);
  let url: URL;
  try {
    url = new URL(opts.relayUrl);
  } catch {
    throw new DrawbridgeError('ERR_USAGE', `--relay ${opts.relayUrl} is not a URL; use the relay's connector listener, like https://relay.example.com:8443`);
  }
  if (url.protocol !== 'https:') throw new DrawbridgeError('ERR_USAGE', '--relay must be an https:// URL: the connector never talks to the relay in plain text');
  const relayUrl = url.origin;
  let ca: string | undefined;
  if (opts.caPin) {
    parsePin(opts.caPin);
    say(`checking the relay's certificate against ${opts.caPin}`);
    ca = await fetchPinnedCa(relayUrl, opts.caPin);
  } else {
    say('no --ca-pin: the relay must have a publicly trusted certificate');
  }
  say('generating a key pair on this host');
  const identity = await generateIdentity();
  say(`registering with ${relayUrl}`);
  const name = opts.name ?? hostname();
  const res = await register({ relayUrl, token: opts.token, csr: identity.csrPem, name, version: CONNECTOR_VERSION, ca });
  say(`writing key and certificate to ${opts.stateDir}`);
  await writeStateFiles(opts.stateDir, {
    key: identity.keyPem,
    cert: res.certificate,
    ca: res.caChain,
    relayUrl,
    connectorId: res.connectorId,
    groupId: res.group.id,
    name: res.name,
    ...(opts.caPin ? { caPin: opts.caPin } : {}),
  });
  return { connectorId: res.connectorId, name: res.name, group: res.group, notAfter: res.notAfter };
}
