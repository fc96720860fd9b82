// The gRPC calls every service serves and makes, counted by method (its full
// path, so services sharing one process stay apart) and status code, with
// the time the server took.
import * as grpc from '@grpc/grpc-js';
import { toGrpcError } from '@stevedore/errors';
import { Counter, Histogram, once } from '@stevedore/metrics';

const serverHandled = once('stevedore_grpc_server_handled_total', () => new Counter({ name: 'stevedore_grpc_server_handled_total', help: 'gRPC calls served, by method and status code', labelNames: ['method', 'code'] }));
const serverSeconds = once('stevedore_grpc_server_handling_seconds', () => new Histogram({ name: 'stevedore_grpc_server_handling_seconds', help: 'Time from a gRPC call\'s arrival to its end, by method', labelNames: ['method'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30] }));
const clientHandled = once('stevedore_grpc_client_handled_total', () => new Counter({ name: 'stevedore_grpc_client_handled_total', help: 'gRPC calls made, by method and status code', labelNames: ['method', 'code'] }));

const codeName = (code: number | undefined) => grpc.status[code ?? grpc.status.UNKNOWN] ?? String(code);

/** Counts a served call once its handler settles. */
export function observeServed<T>(method: string, work: Promise<T>): Promise<T> {
  const end = serverSeconds.startTimer({ method });
  work.then(
    () => serverHandled.inc({ method, code: 'OK' }),
    (err: unknown) => serverHandled.inc({ method, code: codeName(toGrpcError(err).code) }),
  ).finally(() => end());
  return work;
}

/** Counts a call made, when its status arrives. */
export function observeMade<C extends { once(event: 'status', listener: (s: grpc.StatusObject) => void): unknown }>(method: string, call: C): C {
  call.once('status', (s: grpc.StatusObject) => clientHandled.inc({ method, code: codeName(s.code) }));
  return call;
}
