export * from './constants.ts';
export * from './errors.ts';
export type * from './frames.ts';
export * from './encode.ts';
export { FrameDecoder, parseFrame, type DecodeItem } from './decode.ts';
export * from './http-fields.ts';
