// The server side of RFC 6455, as much as WebSocket attach needs: the
// handshake, text frames out, and client frames (masked, possibly
// fragmented) in. Control frames: close is answered, ping gets a pong.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | opcode;
  if (len < 126) head[1] = len;
  else if (len < 65536) {
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

/** Emits `message` (Buffer) for every data frame the client sends, and `close`. */
export class WebSocketPeer extends EventEmitter {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(readonly socket: Duplex) {
    super();
    socket.on('data', (c: Buffer) => this.take(c));
    socket.on('close', () => this.emit('close'));
    socket.on('end', () => this.emit('close'));
    socket.on('error', () => this.emit('close'));
  }

  private take(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) return;
      const opcode = this.buffer[0] & 0x0f;
      const masked = (this.buffer[1] & 0x80) !== 0;
      let len = this.buffer[1] & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (this.buffer.length < 4) return;
        len = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (this.buffer.length < 10) return;
        len = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      const maskOffset = offset;
      if (masked) offset += 4;
      if (this.buffer.length < offset + len) return;
      const payload = Buffer.from(this.buffer.subarray(offset, offset + len));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= this.buffer[maskOffset + (i % 4)];
      this.buffer = this.buffer.subarray(offset + len);
      if (opcode === 0x8) {
        this.socket.end(frame(0x8, payload.subarray(0, 2)));
        this.emit('close');
        return;
      }
      if (opcode === 0x9) this.socket.write(frame(0xa, payload));
      else if (opcode <= 0x2) this.emit('message', payload);
    }
  }

  /** Output goes as text frames, as Docker's WebSocket attach sent it. */
  send(data: Buffer): boolean {
    return this.socket.write(frame(0x1, data));
  }

  close(): void {
    if (this.socket.writable) this.socket.end(frame(0x8, Buffer.from([0x03, 0xe8])));
  }
}
