/**
 * Who is really at the other end of a user request. Directly connected
 * clients are what the socket says. Behind a load balancer listed in
 * `public.trustedProxies`, the client address and scheme come from the
 * balancer's X-Forwarded-For and X-Forwarded-Proto; from anyone else those
 * headers are ignored, so a client cannot claim to be someone else.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface ClientInfo {
  /** The user's address. */
  address: string;
  /** The scheme the user used. */
  proto: 'http' | 'https';
  /** Forwarded by a peer relay of this deployment: never forward it again. */
  fromPeer?: boolean;
}

/**
 * Where a request keeps its ClientInfo: a property on the request itself, not
 * a WeakMap keyed by requests, whose table gains an entry per request, is
 * emptied only by collections, and cost about 1 % of the relay's time.
 */
const INFO = Symbol('drawbridge.clientInfo');
type WithInfo = IncomingMessage & { [INFO]?: ClientInfo };

function bare(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** The immediate peer of this hop: what it appends to X-Forwarded-For. */
export function peerAddress(req: IncomingMessage): string {
  return bare(req.socket.remoteAddress ?? '');
}

/** Builds the trusted-proxy list from addresses and CIDR ranges (`10.0.0.0/8`, `::1`). */
export function trustedProxies(entries: readonly string[]): BlockList | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0) throw new Error(`${entry} is not an IP address or CIDR range`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address!, type);
    else list.addSubnet(address!, Number(bits), type);
  }
  return list;
}

function isTrusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** Works out (once per request) the user's address and scheme. */
export function resolveClient(req: IncomingMessage, trusted: BlockList | undefined, fromPeer = false): ClientInfo {
  const peer = peerAddress(req);
  let info: ClientInfo = { address: peer, proto: (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http' };
  if (fromPeer || (trusted && isTrusted(trusted, peer))) {
    // Walk X-Forwarded-For from the right, past our own balancers, to the first outside address.
    const hops = (req.headersDistinct['x-forwarded-for'] ?? []).flatMap((v) => v.split(',')).map((s) => bare(s.trim())).filter(Boolean);
    let address = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      address = hops[i]!;
      if (!trusted || !isTrusted(trusted, address)) break;
    }
    const forwardedProto = req.headersDistinct['x-forwarded-proto']?.at(-1)?.split(',').at(-1)?.trim().toLowerCase();
    info = { address, proto: forwardedProto === 'https' ? 'https' : forwardedProto === 'http' ? 'http' : info.proto, ...(fromPeer ? { fromPeer } : {}) };
  }
  (req as WithInfo)[INFO] = info;
  return info;
}

/** The request's ClientInfo (resolved by the public listener), or what the socket says. */
export function clientInfo(req: IncomingMessage): ClientInfo {
  return (req as WithInfo)[INFO] ?? resolveClient(req, undefined);
}
