export * from './agent.ts';
export * from './tunnel-client.ts';
export * from './forwarder.ts';
export { resolveTarget } from './target.ts';
