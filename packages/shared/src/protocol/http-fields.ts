/**
 * HTTP fields that describe one connection and never cross a proxy (RFC 9110
 * §7.6.1, plus the obsolete Proxy-Connection and HTTP/2's upgrade settings).
 * The relay drops them toward the connector and toward the user; the
 * connector drops them again toward the app rather than rely on the relay.
 * Fields named in a Connection header are hop-by-hop too; whoever sees that
 * header drops them. Upgrades keep Connection and Upgrade.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);
