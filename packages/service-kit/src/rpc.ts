// Handlers for gRPC methods written as async functions. Each call gets the
// request id from metadata and a logger carrying it; a thrown error becomes
// the gRPC status of its kind (@stevedore/errors).
import type * as grpc from '@grpc/grpc-js';
import { toGrpcError, asStevedoreError } from '@stevedore/errors';
import { newRequestId, REQUEST_ID_HEADER, type Logger } from '@stevedore/logging';

export interface CallContext {
  requestId: string;
  log: Logger;
  /** Aborted when the caller cancels or goes away. */
  signal: AbortSignal;
}

function contextOf(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, log: Logger, method: string): CallContext {
  const requestId = String(call.metadata.get(REQUEST_ID_HEADER)[0] ?? newRequestId());
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return { requestId, log: log.child({ reqId: requestId, rpc: method }), signal: controller.signal };
}

function logFailure(ctx: CallContext, err: unknown): void {
  const e = asStevedoreError(err);
  if (e.kind === 'internal') ctx.log.error({ err }, 'call failed');
  else ctx.log.info({ kind: e.kind, msg: e.message }, 'call refused');
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;
export type ServerStreamHandler<Req, Res> = (
  request: Req,
  stream: grpc.ServerWritableStream<Req, Res>,
  ctx: CallContext,
) => Promise<void>;

export function unary<Req, Res>(log: Logger, method: string, handler: UnaryHandler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const ctx = contextOf(call, log, method);
    const started = performance.now();
    handler(call.request, ctx).then(
      (res) => {
        ctx.log.info({ ms: Math.round((performance.now() - started) * 1000) / 1000 }, 'call');
        callback(null, res);
      },
      (err) => {
        logFailure(ctx, err);
        callback(toGrpcError(err));
      },
    );
  };
}

/** A server stream: the handler writes (honouring back-pressure) and returns when done. */
export function serverStream<Req, Res>(
  log: Logger,
  method: string,
  handler: ServerStreamHandler<Req, Res>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const ctx = contextOf(call, log, method);
    ctx.log.info('stream opened');
    handler(call.request, call, ctx).then(
      () => {
        ctx.log.info({ cancelled: ctx.signal.aborted }, 'stream ended');
        if (!ctx.signal.aborted) call.end();
      },
      (err) => {
        if (ctx.signal.aborted) return;
        logFailure(ctx, err);
        call.emit('error', toGrpcError(err));
      },
    );
  };
}

/**
 * Writes one message; resolves when the stream can take more, so a slow
 * reader slows the writer instead of growing a buffer. Rejects if the call ends.
 */
export function writeWithBackpressure<T>(stream: grpc.ServerWritableStream<unknown, T>, message: T, signal: AbortSignal): Promise<void> | undefined {
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
