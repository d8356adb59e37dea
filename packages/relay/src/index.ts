export * from './relay.ts';
export * from './catalog.ts';
export * from './access.ts';
export * from './tunnel/registry.ts';
export * from './tunnel/connector-listener.ts';
export * from './proxy/headers.ts';
export type { RequestIdentity, ExchangeSummary } from './proxy/http-proxy.ts';
export * from './auth/index.ts';
