// Typed gRPC over the definitions generated from the .proto files: a client
// whose unary methods return promises and whose streams are grpc-js's own
// Node streams, and a server whose handlers are typed by the same
// definition. Every call carries the request id, waits for a restarting
// service (waitForReady) up to its deadline, and fails with a StevedoreError
// that names the service it could not reach. (docs/decisions.md, "Typed gRPC".)
import type { Duplex, Readable, Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { GrpcServiceName, StevedoreConfig } from '@stevedore/config';
import { asStevedoreError, StevedoreError, toHttpError } from '@stevedore/errors';
import { REQUEST_ID_HEADER, type Logger } from '@stevedore/logging';
import { observeMade, observeServed } from './grpc-metrics';
import { channelCredentials } from './credentials';
import { answer, contextOf, finishStream, FLOW_CONTROL_WINDOW, type CallContext } from './rpc';
import type { GrpcBinding } from './grpc-service';

/** The shape of one method in a generated definition. */
interface Method<Req, Res, ReqStream extends boolean, ResStream extends boolean> {
  path: string;
  requestStream: ReqStream;
  responseStream: ResStream;
  requestSerialize(value: Req): Buffer;
  requestDeserialize(bytes: Buffer): Req;
  responseSerialize(value: Res): Buffer;
  responseDeserialize(bytes: Buffer): Res;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyMethod = Method<any, any, boolean, boolean>;
type Definition = Record<string, AnyMethod>;
type RequestOf<M> = M extends { requestDeserialize(bytes: Buffer): infer Req } ? Req : never;
type ResponseOf<M> = M extends { responseDeserialize(bytes: Buffer): infer Res } ? Res : never;

/** How one call is made: its request id, a deadline (unary calls: 10 s unless set), and a signal that cancels it. */
export interface CallSettings {
  requestId: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A client-streaming call: the stream to write (end it when done; a Node Writable, for stream.pipeline) and the answer. */
export interface Upload<Req, Res> {
  stream: grpc.ClientWritableStream<Req> & Writable;
  response: Promise<Res>;
}

type ClientMethod<M> = M extends { requestStream: false; responseStream: false }
  ? (request: RequestOf<M>, call: CallSettings) => Promise<ResponseOf<M>>
  : M extends { requestStream: false; responseStream: true }
    ? (request: RequestOf<M>, call: CallSettings) => grpc.ClientReadableStream<ResponseOf<M>>
    : M extends { requestStream: true; responseStream: false }
      ? (call: CallSettings) => Upload<RequestOf<M>, ResponseOf<M>>
      : (call: CallSettings) => grpc.ClientDuplexStream<RequestOf<M>, ResponseOf<M>> & Duplex;

export type ServiceClient<D> = { readonly [K in keyof D]: ClientMethod<D[K]> } & {
  /** The connection of unary calls and server streams (its channel's state tells when the service comes back). */
  readonly connection: grpc.Client;
  close(): void;
};

// The calls are Node streams (Writable, Readable, Duplex) as well as grpc-js's typed ones: stream.pipeline takes them.
type ServerMethod<M> = M extends { requestStream: false; responseStream: false }
  ? (request: RequestOf<M>, ctx: CallContext) => Promise<ResponseOf<M>>
  : M extends { requestStream: false; responseStream: true }
    ? (request: RequestOf<M>, out: grpc.ServerWritableStream<RequestOf<M>, ResponseOf<M>> & Writable, ctx: CallContext) => Promise<void>
    : M extends { requestStream: true; responseStream: false }
      ? (call: grpc.ServerReadableStream<RequestOf<M>, ResponseOf<M>> & Readable, ctx: CallContext) => Promise<ResponseOf<M>>
      : (call: grpc.ServerDuplexStream<RequestOf<M>, ResponseOf<M>> & Duplex, ctx: CallContext) => Promise<void>;

/** The handlers of a service, one per method of its definition, each typed by it. */
export type ServiceHandlers<D> = { [K in keyof D]: ServerMethod<D[K]> };

/** Reconnect quickly: a restarted service is back within a second. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.min_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
};

const DEFAULT_UNARY_TIMEOUT_MS = 10_000;

/** A failed call as a StevedoreError; a service that cannot be reached is named (Docker's clients show the message). */
export function backendError(err: unknown, service: string): StevedoreError {
  const { status, message } = toHttpError(err, service);
  return status === 503 ? new StevedoreError('unavailable', message) : asStevedoreError(err);
}

/** A service that went away (killed, restarting) or could not be reached: the call may be made again once it is back. */
export function isUnavailable(err: unknown): boolean {
  return err instanceof StevedoreError && err.kind === 'unavailable';
}

/** The request id in metadata, and waitForReady: a call made while a service restarts waits for it (up to the deadline). */
function metadataOf(call: CallSettings): grpc.Metadata {
  const metadata = new grpc.Metadata({ waitForReady: true });
  metadata.set(REQUEST_ID_HEADER, call.requestId);
  return metadata;
}

function optionsOf(call: CallSettings, defaultTimeoutMs?: number): grpc.CallOptions {
  const timeout = call.timeoutMs ?? defaultTimeoutMs;
  return timeout ? { deadline: Date.now() + timeout } : {};
}

/** Cancels the call when the settings' signal aborts (a client of the API that went away); the listener goes with the call. */
function cancelledBy<C extends { cancel(): void; once(event: 'status', listener: () => void): unknown }>(settings: CallSettings, call: C): C {
  const { signal } = settings;
  if (!signal) return call;
  if (signal.aborted) {
    call.cancel();
    return call;
  }
  const cancel = () => call.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  call.once('status', () => signal.removeEventListener('abort', cancel));
  return call;
}

/**
 * A client of one service, made from its generated definition. Calls that
 * send a stream (load, import, a copy into a container) get a connection of
 * their own: Node's HTTP/2 stops reading a connection while its own writes
 * wait for the socket, so a large upload and a large download on one
 * connection (a load during a save) waited for each other until the
 * keepalive cut the connection.
 */
export function connectService<D extends Definition>(definition: D, config: StevedoreConfig, service: GrpcServiceName): ServiceClient<D> {
  const address = config.serviceAddress(service);
  const credentials = channelCredentials(address, config.grpcTls);
  const client = new grpc.Client(address, credentials, CHANNEL_OPTIONS);
  let uploader: grpc.Client | undefined;
  const uploads = () => (uploader ??= new grpc.Client(address, credentials, { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }));
  const methods: Record<string, unknown> = {
    connection: client,
    close() {
      client.close();
      uploader?.close();
    },
  };
  for (const [name, m] of Object.entries(definition)) {
    const failed = (reject: (err: unknown) => void) => (err: grpc.ServiceError | null) => reject(backendError(err, service));
    if (!m.requestStream && !m.responseStream) {
      methods[name] = (request: unknown, call: CallSettings) =>
        new Promise((resolve, reject) => {
          observeMade(m.path, cancelledBy(call, client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, metadataOf(call), optionsOf(call, DEFAULT_UNARY_TIMEOUT_MS), (err, res) => (err ? failed(reject)(err) : resolve(res)))));
        });
    } else if (!m.requestStream) {
      methods[name] = (request: unknown, call: CallSettings) => observeMade(m.path, cancelledBy(call, client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, request, metadataOf(call), optionsOf(call))));
    } else if (!m.responseStream) {
      methods[name] = (call: CallSettings) => {
        let stream!: grpc.ClientWritableStream<unknown>;
        const response = new Promise((resolve, reject) => {
          stream = observeMade(m.path, cancelledBy(call, uploads().makeClientStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, metadataOf(call), optionsOf(call), (err, res) => (err ? failed(reject)(err) : resolve(res)))));
        });
        return { stream, response };
      };
    } else {
      methods[name] = (call: CallSettings) => observeMade(m.path, cancelledBy(call, uploads().makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, metadataOf(call), optionsOf(call))));
    }
  }
  return methods as ServiceClient<D>;
}

/** A service's handlers bound to its definition, ready for the server (service-kit's runGrpcService). */
export function serve<D extends Definition>(definition: D, log: Logger, handlers: ServiceHandlers<D>): GrpcBinding {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [name, m] of Object.entries(definition)) {
    const handler = (handlers as Record<string, (...args: unknown[]) => Promise<unknown>>)[name];
    if (!m.requestStream && !m.responseStream) {
      implementation[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const ctx = contextOf(call, log, name);
        answer(ctx, observeServed(m.path, handler(call.request, ctx)), callback);
      };
    } else if (!m.requestStream) {
      implementation[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const ctx = contextOf(call, log, name);
        finishStream(call, ctx, observeServed(m.path, handler(call.request, call, ctx) as Promise<void>));
      };
    } else if (!m.responseStream) {
      implementation[name] = (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const ctx = contextOf(call, log, name);
        answer(ctx, observeServed(m.path, handler(call, ctx)), callback);
      };
    } else {
      implementation[name] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        const ctx = contextOf(call, log, name);
        finishStream(call, ctx, observeServed(m.path, handler(call, ctx) as Promise<void>));
      };
    }
  }
  return { definition: definition as grpc.ServiceDefinition, implementation };
}
