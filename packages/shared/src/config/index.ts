export * from './types.ts';
export * from './units.ts';
export * from './sso.ts';
