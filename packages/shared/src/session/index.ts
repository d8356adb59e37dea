export * from './session.ts';
export * from './stream.ts';
