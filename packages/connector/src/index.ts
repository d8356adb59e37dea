export * from './agent.ts';
export * from './tunnel-client.ts';
export * from './forwarder.ts';
export { resolveTarget } from './target.ts';
export * from './service.ts';
export * from './register.ts';
export * from './config-puller.ts';
export { RelayClient, fetchPinnedCa } from './relay-api.ts';
export { ssoHeaders } from './sso.ts';
