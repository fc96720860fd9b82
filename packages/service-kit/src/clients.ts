// gRPC clients of the services, as the API edge and the services use them.
import * as grpc from '@grpc/grpc-js';
import type { GrpcServiceName, StevedoreConfig } from '@stevedore/config';
import { REQUEST_ID_HEADER } from '@stevedore/logging';
import { channelCredentials } from './credentials';
import { FLOW_CONTROL_WINDOW } from './rpc';

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

type ClientConstructor<C> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => C;

export function createServiceClient<C>(Ctor: ClientConstructor<C>, config: StevedoreConfig, service: GrpcServiceName): C {
  const address = config.serviceAddress(service);
  const credentials = channelCredentials(address, config.grpcTls);
  const client = new Ctor(address, credentials, CHANNEL_OPTIONS);
  // The calls that send a stream (load, import, a copy into a container) get
  // a connection of their own. Node's HTTP/2 stops reading a connection while
  // its own writes wait for the socket, so a large upload and a large
  // download on one connection (a load during a save) filled both sockets and
  // waited for each other until the keepalive cut the connection.
  const definition = (Ctor as unknown as { service?: grpc.ServiceDefinition }).service ?? {};
  const uploads = Object.keys(definition).filter((name) => definition[name].requestStream);
  if (uploads.length === 0) return client;
  const uploader = new Ctor(address, credentials, { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  const own = client as unknown as grpc.Client & Record<string, unknown>;
  for (const name of uploads) own[name] = uploader[name].bind(uploader);
  const close = own.close.bind(own);
  own.close = () => {
    close();
    uploader.close();
  };
  return client;
}

/**
 * Options of one call: the request id in metadata, a deadline, and
 * waitForReady so that a call made while a service restarts waits for it
 * (up to the deadline) instead of failing at once.
 */
export function callOptions(requestId: string, timeoutMs?: number): { metadata: grpc.Metadata; options: Partial<grpc.CallOptions> } {
  const metadata = new grpc.Metadata({ waitForReady: true });
  metadata.set(REQUEST_ID_HEADER, requestId);
  return { metadata, options: timeoutMs ? { deadline: Date.now() + timeoutMs } : {} };
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method of a generated client and resolves with its answer. */
export function callUnary<Req, Res>(
  client: grpc.Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  requestId: string,
  timeoutMs = 10_000,
): Promise<Res> {
  const { metadata, options } = callOptions(requestId, timeoutMs);
  return new Promise((resolve, reject) => {
    method.call(client, request, metadata, options, (err, res) => (err ? reject(err) : resolve(res)));
  });
}
