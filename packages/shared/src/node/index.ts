export * from './files.ts';
export * from './gc.ts';
