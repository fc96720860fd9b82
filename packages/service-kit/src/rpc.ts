// Handlers for gRPC methods written as async functions. Each call gets the
// request id from metadata and a logger carrying it; a thrown error becomes
// the gRPC status of its kind (@stevedore/errors).
import type * as grpc from '@grpc/grpc-js';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { toGrpcError, asStevedoreError, invalid } from '@stevedore/errors';
import { newRequestId, REQUEST_ID_HEADER, type Logger } from '@stevedore/logging';
import { gatherPayload } from '@stevedore/contracts';

export interface CallContext {
  requestId: string;
  log: Logger;
  /** Aborted when the caller cancels or goes away. */
  signal: AbortSignal;
}

type AnyServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

/** One reason for every cancelled call (an abort without one makes a DOMException each time). */
const CALLER_WENT_AWAY = new Error('the caller cancelled the call or went away');

export function contextOf(call: AnyServerCall, log: Logger, method: string): CallContext {
  const requestId = String(call.metadata.get(REQUEST_ID_HEADER)[0] ?? newRequestId());
  const controller = new AbortController();
  (call as grpc.ServerUnaryCall<unknown, unknown>).on('cancelled', () => controller.abort(CALLER_WENT_AWAY));
  return { requestId, log: log.child({ reqId: requestId, rpc: method }), signal: controller.signal };
}

function logFailure(ctx: CallContext, err: unknown): void {
  const e = asStevedoreError(err);
  if (e.kind === 'internal') ctx.log.error({ err }, 'call failed');
  else ctx.log.info({ kind: e.kind, msg: e.message }, 'call refused');
}

/** Answers a call once its handler settles: the result, or the error as a gRPC status. */
export function answer<Res>(ctx: CallContext, work: Promise<Res>, callback: (err: Partial<grpc.ServiceError> | null, res?: Res) => void): void {
  const started = performance.now();
  work.then(
    (res) => {
      ctx.log.debug({ ms: Math.round((performance.now() - started) * 1000) / 1000 }, 'call');
      callback(null, res);
    },
    (err) => {
      logFailure(ctx, err);
      callback(toGrpcError(err));
    },
  );
}

/** Ends a streaming call once its handler settles: normally, or with the error as a gRPC status. */
export function finishStream(call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, ctx: CallContext, work: Promise<void>): void {
  ctx.log.debug('stream opened');
  work.then(
    () => {
      ctx.log.debug({ cancelled: ctx.signal.aborted }, 'stream ended');
      if (!ctx.signal.aborted) call.end();
    },
    (err) => {
      if (ctx.signal.aborted) return;
      logFailure(ctx, err);
      call.emit('error', toGrpcError(err));
    },
  );
}

/** Every message of a client stream as bytes, in a Readable that pauses the client when full. */
export function clientBytes<Req>(call: grpc.ServerReadableStream<Req, unknown> | grpc.ServerDuplexStream<Req, unknown>, bytesOf: (req: Req) => Buffer | undefined): Readable {
  const bytes = new Readable({ read: () => void call.resume() });
  bytes.on('error', () => undefined);
  call.on('data', (req: Req) => {
    const chunk = bytesOf(req);
    if (chunk && chunk.length && !bytes.push(chunk)) call.pause();
  });
  call.on('end', () => bytes.push(null));
  call.on('error', (err) => bytes.destroy(err));
  call.on('cancelled', () => bytes.destroy(new Error('the client went away')));
  return bytes;
}

/**
 * Bytes per message when an upload crosses gRPC. Measured on import: 256 KiB
 * took the least CPU in the API edge (64 KiB messages cost more per byte,
 * 1 MiB ones more in allocation and copying).
 */
export const STREAM_MESSAGE_BYTES = 256 * 1024;

/** The HTTP/2 receive window of gRPC clients and servers (the default 64 KiB stalls bulk streams). */
export const FLOW_CONTROL_WINDOW = 4 * 1024 * 1024;

/**
 * A Writable whose bytes go out as messages of a server stream, at the
 * reader's pace, one message per chunk (gathering them was measured slower
 * for save and export, before bulk messages had a codec of their own).
 */
export function messageWriter<Res>(call: grpc.ServerWritableStream<unknown, Res>, wrap: (chunk: Buffer) => Res): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (call.write(wrap(chunk))) cb();
      else call.once('drain', () => cb());
    },
  });
}

/**
 * Sends bytes as the messages of a server stream, at the reader's pace
 * (stream.pipeline over the call, a Node Writable). The call is left open:
 * the service kit ends it when the handler returns, or with the handler's
 * error as a status of its kind.
 */
export function sendBytes<Res>(bytes: Readable, call: Writable, wrap: (chunk: Buffer) => Res, signal: AbortSignal): Promise<void> {
  return pipeline(
    bytes,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) yield wrap(chunk);
    },
    call,
    { end: false, signal },
  );
}

/** Gathers a byte stream's chunks into payloads of about STREAM_MESSAGE_BYTES, laid out for a bulk message (uploads from the API edge). */
export async function* gatherChunks(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    pending.push(chunk);
    size += chunk.length;
    if (size >= STREAM_MESSAGE_BYTES) {
      yield gatherPayload(pending, size);
      pending = [];
      size = 0;
    }
  }
  if (size) yield gatherPayload(pending, size);
}

/**
 * A client stream whose first message is a header and the rest carry bytes:
 * resolves with the header and the bytes as a Readable. The client is
 * paused while the Readable is full (back-pressure over gRPC flow control).
 */
export function headerThenBytes<Req>(call: grpc.ServerDuplexStream<Req, unknown> | grpc.ServerReadableStream<Req, unknown>, bytesOf: (req: Req) => Buffer | undefined): Promise<{ header: Req; bytes: Readable }> {
  return new Promise((resolve, reject) => {
    const bytes = new Readable({ read: () => void call.resume() });
    // A handler that failed before reading must not crash the process with the call's error.
    bytes.on('error', () => undefined);
    let header: Req | undefined;
    call.on('data', (req: Req) => {
      if (header === undefined) {
        header = req;
        resolve({ header, bytes });
        return;
      }
      const chunk = bytesOf(req);
      if (chunk && chunk.length && !bytes.push(chunk)) call.pause();
    });
    call.on('end', () => {
      if (header === undefined) reject(invalid('The stream ended before its header'));
      else bytes.push(null);
    });
    call.on('error', (err) => (header === undefined ? reject(err) : bytes.destroy(err)));
    call.on('cancelled', () => bytes.destroy(new Error('the client went away')));
  });
}

/**
 * Writes one message; resolves when the stream can take more, so a slow
 * reader slows the writer instead of growing a buffer. Rejects if the call ends.
 */
export function writeWithBackpressure<T>(stream: grpc.ServerWritableStream<unknown, T> | grpc.ServerDuplexStream<unknown, T>, message: T, signal: AbortSignal): Promise<void> | undefined {
  // A call already cancelled takes nothing and will never drain: waiting for it hung its handler for good.
  if (signal.aborted) return Promise.reject(new Error('call cancelled'));
  if (stream.write(message)) return undefined;
  return new Promise((resolve, reject) => {
    const done = () => {
      stream.off('drain', done);
      signal.removeEventListener('abort', abort);
      resolve();
    };
    const abort = () => {
      stream.off('drain', done);
      reject(new Error('call cancelled'));
    };
    stream.on('drain', done);
    signal.addEventListener('abort', abort, { once: true });
  });
}
