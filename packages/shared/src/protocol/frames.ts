/**
 * Decoded frames. A header list is a flat array of [name, value] pairs in wire
 * order, so repeated headers (Set-Cookie, X-Forwarded-For) survive untouched.
 */
import type { FrameType } from './constants.ts';

export type HeaderList = Array<[name: string, value: string]>;

/** Limits and identity a peer announces in its HELLO. */
export interface Hello {
  minVersion: number;
  maxVersion: number;
  /** Largest frame payload the sender accepts. */
  maxFrameSize: number;
  /** Bytes of DATA the peer may send on each new stream before it needs a WINDOW_UPDATE. */
  initialWindow: number;
  /** Streams the sender accepts at once on this connection. */
  maxStreams: number;
  /** Free-form software identity, e.g. `drawbridge-connector/0.1.0`. */
  agent: string;
}

export interface RequestHead {
  method: string;
  /** Request target as sent by the client: path and query (`/a/b?x=1`). */
  target: string;
  /** Application id the relay routed the request to. */
  app: string;
  requestId: string;
  headers: HeaderList;
  /** Relay-side facts the connector needs (client address, identity, …). */
  meta: HeaderList;
}

export interface ResponseHead {
  status: number;
  reason: string;
  headers: HeaderList;
}

interface Base<T extends FrameType> {
  type: T;
  flags: number;
  streamId: number;
}

export type HelloFrame = Base<typeof FrameType.HELLO> & { hello: Hello };
export type RequestFrame = Base<typeof FrameType.REQUEST> & { head: RequestHead };
export type ResponseFrame = Base<typeof FrameType.RESPONSE> & { head: ResponseHead };
export type DataFrame = Base<typeof FrameType.DATA> & { data: Uint8Array };
export type TrailersFrame = Base<typeof FrameType.TRAILERS> & { trailers: HeaderList };
export type WindowUpdateFrame = Base<typeof FrameType.WINDOW_UPDATE> & { increment: number };
export type ResetFrame = Base<typeof FrameType.RESET> & { errorCode: number; message: string };
export type PingFrame = Base<typeof FrameType.PING> & { opaque: Uint8Array };
export type GoawayFrame = Base<typeof FrameType.GOAWAY> & { lastStreamId: number; errorCode: number; message: string };
export type NoticeFrame = Base<typeof FrameType.NOTICE> & { kind: number; body: Uint8Array };

export type Frame =
  | HelloFrame
  | RequestFrame
  | ResponseFrame
  | DataFrame
  | TrailersFrame
  | WindowUpdateFrame
  | ResetFrame
  | PingFrame
  | GoawayFrame
  | NoticeFrame;
