// The API edge's view of the services: one gRPC client each, and a way to
// call them that carries the request id and names the service on failure.
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type * as grpc from '@grpc/grpc-js';
import { containers, events, images } from '@stevedore/contracts';
import type { StevedoreConfig } from '@stevedore/config';
import { callUnary, createServiceClient } from '@stevedore/service-kit';
import { CONFIG } from '../nest-context';
import { asStevedoreError, StevedoreError, toHttpError } from '@stevedore/errors';

@Injectable()
export class Backends implements OnApplicationShutdown {
  readonly events: events.EventsClient;
  readonly images: images.ImageStoreClient;
  readonly containers: containers.ContainerRuntimeClient;

  constructor(@Inject(CONFIG) config: StevedoreConfig) {
    this.events = createServiceClient(events.EventsClient, config, 'events');
    this.images = createServiceClient(images.ImageStoreClient, config, 'image-store');
    this.containers = createServiceClient(containers.ContainerRuntimeClient, config, 'container-runtime');
  }

  onApplicationShutdown(): void {
    for (const c of [this.events, this.images, this.containers]) c.close();
  }
}

/**
 * Calls a unary method; a failure becomes a StevedoreError whose status and
 * message are already Docker's (a service that cannot be reached is named).
 */
export async function call<C extends grpc.Client, Req, Res>(
  client: C,
  method: (this: C, req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall,
  request: Req,
  requestId: string,
  service: string,
  timeoutMs?: number,
): Promise<Res> {
  try {
    return await callUnary(client, method as never, request, requestId, timeoutMs);
  } catch (err) {
    throw backendError(err, service);
  }
}

/** A service that went away (killed, restarting) or could not be reached: the call may be made again once it is back. */
export function isUnavailable(err: unknown): boolean {
  return err instanceof StevedoreError && err.kind === 'unavailable';
}

/** A failed call as a StevedoreError; a service that cannot be reached is named. */
export function backendError(err: unknown, service: string): StevedoreError {
  const { status, message } = toHttpError(err, service);
  return status === 503 ? new StevedoreError('unavailable', message) : asStevedoreError(err);
}
