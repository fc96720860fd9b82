// Runs a Stevedore gRPC service: its parts, built by the service's own
// composition root, served by @grpc/grpc-js with the health service beside it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { loadConfig, type GrpcServiceName, type StevedoreConfig } from '@stevedore/config';
import { createLogger, type Logger } from '@stevedore/logging';
import { serveMetrics } from '@stevedore/metrics';
import { health } from '@stevedore/contracts';
import { HealthState } from './health';
import { isUnixAddress, serverCredentials } from './credentials';
import { FLOW_CONTROL_WINDOW } from './rpc';
import { PRIVATE_DIR_MODE, secureDataRoot, serviceUmask } from './data-root';

export interface GrpcBinding {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** What a service's composition root builds: the gRPC services it serves, and how its parts stop. */
export interface ServiceParts {
  bindings: GrpcBinding[];
  /** Releases what the parts hold (connections, timers, children), after the server has stopped. */
  stop(): Promise<void>;
}

/** A service's config and logger: all its composition root is given. */
export interface ServiceContext {
  config: StevedoreConfig;
  log: Logger;
}

export interface GrpcServiceOptions {
  name: GrpcServiceName;
  /** Builds and starts the service's parts (each given its collaborators), ready to serve. */
  compose: (context: ServiceContext) => Promise<ServiceParts>;
}

/** A running part of the stack, whichever process it runs in. */
export interface StoppableService {
  stop(): Promise<void>;
}

/**
 * How a service starts: in a process of its own (`signals`: it stops on
 * SIGTERM/SIGINT and exits), or beside the others in the supervisor
 * (STEVEDORE_PROCESSES=one: the supervisor stops it).
 */
export type ServiceStart = (options: { signals: boolean }) => Promise<StoppableService>;

/**
 * Starts the service: composes its parts, binds its gRPC services on the
 * configured address, reports SERVING, and (with `signals`) stops cleanly
 * on SIGTERM/SIGINT.
 */
async function runGrpcService(options: GrpcServiceOptions & { signals: boolean }): Promise<StoppableService> {
  const context = serviceContext(options.name);
  const { config, log } = context;
  secureDataRoot(config);
  const parts = await options.compose(context);

  const healthState = new HealthState();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  server.addService(health.HealthService, healthState.implementation());
  for (const b of parts.bindings) server.addService(b.definition, b.implementation);

  const address = config.serviceAddress(options.name);
  if (isUnixAddress(address)) {
    const file = address.replace(/^unix:(\/\/)?/, '');
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
    fs.rmSync(file, { force: true }); // a socket left by a killed predecessor
  }
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(address, serverCredentials(address, config.grpcTls), (err) => (err ? reject(err) : resolve())),
  );
  // Only root talks to a service over its socket (its directory, run/, is private too).
  if (isUnixAddress(address)) fs.chmodSync(address.replace(/^unix:(\/\/)?/, ''), 0o600);
  widenFlowControlWindow(server);
  healthState.setServing(true);
  log.info({ address }, 'serving');
  const metrics = await serveMetrics(config.metricsAddress(options.name), log);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      healthState.setServing(false);
      metrics?.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await parts.stop();
      log.info('stopped');
      log.flush();
    })());
  if (options.signals) {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.once(sig, () => void stop().finally(() => process.exit(0)));
    }
  }
  return { stop };
}

/**
 * Gives the server's HTTP/2 sessions and streams a receive window of
 * FLOW_CONTROL_WINDOW. With HTTP/2's default of 64 KiB an upload stops for a
 * window update every 64 KiB; grpc-js has a channel option for its clients
 * but none for its server, so the window is set on the HTTP/2 servers it
 * made (a grpc-js that stops exposing them fails here, at start-up).
 */
function widenFlowControlWindow(server: grpc.Server): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) throw new Error('grpc-js no longer exposes its HTTP/2 servers: cannot set the flow-control window');
  for (const h2 of servers.keys() as Iterable<http2.Http2Server>) {
    h2.updateSettings({ initialWindowSize: FLOW_CONTROL_WINDOW });
    h2.on('session', (session: http2.ServerHttp2Session) => session.setLocalWindowSize(FLOW_CONTROL_WINDOW));
  }
}

/** A gRPC service's start, for its main.ts and for the supervisor's STEVEDORE_PROCESSES=one. */
export function grpcServiceStart(options: GrpcServiceOptions): ServiceStart {
  return ({ signals }) => runGrpcService({ ...options, signals });
}

/** A service's entry point (main.ts): runs it in this process, or logs why it could not start and exits non-zero. */
export function runServiceMain(name: string, start: ServiceStart): void {
  process.umask(serviceUmask(name));
  start({ signals: true }).catch((err) => {
    serviceContext(name).log.fatal({ err }, 'could not start');
    console.error(err);
    process.exit(1);
  });
}

const contexts = new Map<string, ServiceContext>();

/** A service's config and logger (one process may run several services). */
export function serviceContext(name: string): ServiceContext {
  let context = contexts.get(name);
  if (!context) {
    const config = loadConfig();
    context = { config, log: createLogger(name, config.logLevel) };
    contexts.set(name, context);
  }
  return context;
}
