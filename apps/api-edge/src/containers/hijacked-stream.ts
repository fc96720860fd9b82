// A hijacked connection relaying an attachment (POST /containers/(id)/attach,
// POST /exec/(id)/start): the answer's head, then output framed as the
// version and the TTY want it, and the client's bytes as stdin.
import type { Writable } from 'node:stream';
import type { ApiRequest } from '../http/api-request';
import { AttachOutput, type AttachOutputOptions } from '../http/attach-output';
import { RuntimeAttachment, type AttachRuntime, type AttachTarget } from './runtime-attachment';

/** The 8-byte header of a multiplexed frame (STREAMS.md §4). */
export function muxHeader(stream: number, length: number): Buffer {
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(length, 4);
  return head;
}

/** A multiplexed frame as one buffer. */
export function muxFrame(stream: number, data: Uint8Array): Buffer {
  return Buffer.concat([muxHeader(stream, data.byteLength), data]);
}

/** Writes a multiplexed frame as its header and its data (one writev, the data not copied). */
function writeMuxFrame(socket: Writable, stream: number, data: Uint8Array): boolean {
  socket.cork();
  socket.write(muxHeader(stream, data.byteLength));
  const open = socket.write(data);
  socket.uncork();
  return open;
}

export interface HijackedRelay {
  rt: AttachRuntime;
  target: AttachTarget;
  /** Output in 8-byte frames (gate G10: from v1.6, without a TTY). */
  multiplex: boolean;
  /** How far a client may fall behind in memory, and then in a spool, before it is cut off. */
  backlog: Pick<AttachOutputOptions, 'limit' | 'spool'>;
  /** What the client reads when the attachment failed. */
  failureText(message: string): string;
}

/**
 * Takes the connection over and relays the attachment until its output
 * ends. With an Upgrade header (today's clients insist) the answer is 101;
 * otherwise Docker 1.0's 200.
 */
export async function relayHijacked(req: ApiRequest, o: HijackedRelay): Promise<void> {
  const { multiplex } = o;
  const head = req.hijack
    ? 'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n'
    : 'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n';
  // From here the connection is a raw pipe.
  const socket = req.takeOver();
  socket.write(head);

  const attachment = new RuntimeAttachment(o.rt, o.target, req.requestId, req.log, (from, data) => output.send(from, data));
  const done = attachment.run();
  // What a client sends without asking for stdin is read and dropped, never held.
  const sendStdin = (chunk: Buffer) => {
    if (!o.target.stdin) return;
    if (!attachment.sendStdin(chunk)) {
      socket.pause();
      attachment.whenDrained(() => socket.resume());
    }
  };
  if (req.hijack?.head.length) sendStdin(req.hijack.head);
  socket.on('data', sendStdin);
  // A socket paused while the request's body was read flows again.
  socket.resume();
  // A half-close is the end of the client's input; output keeps flowing.
  socket.on('end', () => attachment.closeStdin());
  socket.on('error', () => attachment.cancel());
  socket.on('close', () => attachment.cancel());
  const output = new AttachOutput(socket, {
    ...o.backlog,
    write: (stream, data) => (multiplex ? writeMuxFrame(socket, stream, data) : socket.write(data)),
    notice: (text) => socket.write(multiplex ? muxFrame(2, text) : text),
    end: () => socket.end(),
    onCut: (queued) => {
      req.log.warn({ queued }, 'attach client cut off: it fell behind the output');
      attachment.cancel();
    },
  });
  const failure = await done;
  if (failure && !socket.destroyed && socket.writable) {
    const text = Buffer.from(o.failureText(failure.message));
    socket.write(multiplex ? muxFrame(1, text) : text);
  }
  output.finish();
}
