export * from './files.ts';
export * from './gc.ts';
export * from './turns.ts';
export * from './ws-transport.ts';
