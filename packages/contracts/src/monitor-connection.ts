// A container's monitor (the native helper, apps/container-runtime/native/
// shim.c) serves its process's streams on a unix socket: frames of 1 type
// byte, a 4-byte big-endian length and the payload. The container runtime
// talks to it to start, attach and resize; an API edge of the same host
// reads a container's output from it directly (AttachReply.monitor).
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { refused } from '@stevedore/errors';
import { outputCopy } from './bulk-bytes';

export const Frame = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  exit: 3,
  stdinClosed: 4,
  resize: 5,
  start: 6,
  ok: 8,
  error: 9,
  subscribe: 10,
} as const;

function encodeFrame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/**
 * Every monitor's socket is read into this one buffer, 1 MiB at a time:
 * nothing read stays in it (take copies what it keeps before returning, and
 * a read's callback runs before the next read), so reading allocates nothing.
 */
const readBuffer = Buffer.allocUnsafe(1024 * 1024);

/**
 * A connection to a monitor's attach socket, emitting `frame` (type,
 * payload) and `close`. Output (stdout, stderr) is a byte stream: a frame of
 * it is passed on in the pieces the socket gives, as they come, never
 * gathered, each copied once out of the shared read buffer into a
 * message of its own (laid out for gRPC to send as it lies); other frames
 * are whole.
 */
export class ShimConnection extends EventEmitter {
  /** The frame being read: its type, and how many payload bytes are still to come (-1: reading a head). */
  private type = 0;
  private left = -1;
  private head: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];

  private constructor(readonly socket: net.Socket) {
    super();
    socket.on('close', () => this.emit('close'));
    socket.on('error', () => undefined);
  }

  static connect(socketPath: string): Promise<ShimConnection> {
    return new Promise((resolve, reject) => {
      let connection: ShimConnection | undefined;
      const take = (n: number): boolean => {
        connection?.take(readBuffer.subarray(0, n));
        return true;
      };
      const s = net.connect({ path: socketPath, onread: { buffer: readBuffer, callback: take } });
      s.once('connect', () => resolve((connection = new ShimConnection(s))));
      s.once('error', reject);
    });
  }

  private take(chunk: Buffer): void {
    // Output of one stream that came in one read goes on as one piece (one message), whatever frames it was sent in.
    let output: Buffer[] = [];
    let outputType = 0;
    const passOutput = () => {
      if (output.length) this.emit('frame', outputType, outputCopy(output));
      output = [];
    };
    let at = 0;
    while (at < chunk.length) {
      if (this.left < 0) {
        const want = 5 - this.head.length;
        this.head = Buffer.concat([this.head, chunk.subarray(at, at + want)]);
        at += Math.min(want, chunk.length - at);
        if (this.head.length < 5) break;
        this.type = this.head[0];
        this.left = this.head.readUInt32BE(1);
        this.head = Buffer.alloc(0);
        if (this.left === 0) {
          passOutput();
          this.finish(Buffer.alloc(0));
        }
        continue;
      }
      const piece = chunk.subarray(at, at + this.left);
      at += piece.length;
      this.left -= piece.length;
      if (this.type === Frame.stdout || this.type === Frame.stderr) {
        if (this.type !== outputType) passOutput();
        outputType = this.type;
        output.push(piece);
        if (this.left === 0) this.left = -1;
      } else {
        this.parts.push(Buffer.from(piece));
        if (this.left === 0) {
          passOutput();
          this.finish(Buffer.concat(this.parts));
        }
      }
    }
    passOutput();
  }

  private finish(payload: Buffer): void {
    this.parts = [];
    this.left = -1;
    this.emit('frame', this.type, payload);
  }

  send(type: number, payload?: Buffer | string): boolean {
    return this.socket.write(encodeFrame(type, payload));
  }

  /** Sends START and waits for the monitor's answer. */
  start(): Promise<void> {
    return this.request(Frame.start);
  }

  /** Asks for the container's output; resolves once the monitor will send it. */
  subscribe(): Promise<void> {
    return this.request(Frame.subscribe);
  }

  private request(frame: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onFrame = (type: number, payload: Buffer) => {
        if (type === Frame.ok) done(undefined);
        else if (type === Frame.error) done(refused(payload.toString()));
      };
      const onClose = () => done(refused('the container monitor went away before starting the container'));
      const done = (err: Error | undefined) => {
        this.off('frame', onFrame);
        this.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      this.on('frame', onFrame);
      this.on('close', onClose);
      this.send(frame);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

