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
  return new Ctor(address, channelCredentials(address, config.grpcTls), CHANNEL_OPTIONS);
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
