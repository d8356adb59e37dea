/**
 * A session's transport over a `ws` WebSocket: each batch of frames leaves as
 * one complete binary WebSocket frame, built in one buffer and written to the
 * socket under the WebSocket in one call.
 *
 * Why not `ws.send`: it writes the frame header and the payload as two
 * buffers, and Node's TLS socket encrypts from one buffer only, so it copies
 * the two into a new one first (TLSWrap::DoWrite); the session had already
 * copied the batch's frames into that payload. Here the batch's parts are
 * copied once, behind the header, and TLS encrypts straight from that buffer.
 *
 * Writing beside `ws` is safe because nothing of ours goes through its
 * sender: the tunnel has no permessage-deflate (the only thing `ws` queues
 * frames for) and `ws`'s own control frames (pong, close) are written
 * synchronously, whole, so they can fall between two of our frames but never
 * inside one. Once `ws` has started closing, nothing more is written, as
 * `ws.send` would drop it.
 */
import type { Transport } from '../session/session.ts';

/** What the transport needs of a `ws` WebSocket (its public API). */
export interface WebSocketLike {
  readonly readyState: number;
  close(code: number, reason: string): void;
}

/** What it needs of the socket under it. */
export interface SocketLike {
  write(chunk: Uint8Array): boolean;
}

/** `WebSocket.OPEN`. */
const OPEN = 1;
const FIN_BINARY = 0x82;
const MASK_BIT = 0x80;

/**
 * `masked`: the connector is the WebSocket client, whose frames must carry a
 * masking key (RFC 6455 §5.3). It sends the all-zero key, which leaves the
 * payload as it is; docs/protocol.md §2.1 says why masking protects nothing
 * inside the mutually authenticated TLS tunnel.
 */
export function webSocketTransport(ws: WebSocketLike, socket: SocketLike, opts: { masked: boolean }): Transport {
  const keyBytes = opts.masked ? 4 : 0;
  const maskBit = opts.masked ? MASK_BIT : 0;
  return {
    send(parts, bytes) {
      if (ws.readyState !== OPEN) return;
      const lengthBytes = bytes < 126 ? 0 : bytes < 0x10000 ? 2 : 8;
      const offset = 2 + lengthBytes + keyBytes;
      // allocUnsafe: every byte is written below; a small message comes from Node's shared pool.
      const frame = Buffer.allocUnsafe(offset + bytes);
      frame[0] = FIN_BINARY;
      if (lengthBytes === 0) frame[1] = maskBit | bytes;
      else if (lengthBytes === 2) {
        frame[1] = maskBit | 126;
        frame.writeUInt16BE(bytes, 2);
      } else {
        frame[1] = maskBit | 127;
        frame.writeUInt32BE(Math.floor(bytes / 0x1_0000_0000), 2);
        frame.writeUInt32BE(bytes >>> 0, 6);
      }
      if (keyBytes > 0) frame.writeUInt32BE(0, 2 + lengthBytes);
      let o = offset;
      for (const part of parts) {
        frame.set(part, o);
        o += part.length;
      }
      // A wrong total would put the peer out of step with every later frame: fail here, loudly.
      if (o !== frame.length) throw new Error(`batch of ${o - offset} bytes announced as ${bytes}`);
      socket.write(frame);
    },
    close(code, reason) {
      ws.close(code, reason.slice(0, 120));
    },
  };
}
