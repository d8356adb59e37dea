export * from './protocol/index.ts';
export * from './session/index.ts';
export * from './config/index.ts';
