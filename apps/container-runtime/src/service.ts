import { containers } from '@stevedore/contracts';
import { grpcServiceStart } from '@stevedore/service-kit';
import { ContainerRuntimeModule } from './container-runtime.module';
import { ContainerRuntimeRpc } from './container-runtime.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'container-runtime',
  module: ContainerRuntimeModule,
  bindings: (app) => [{ definition: containers.ContainerRuntimeService, implementation: app.get(ContainerRuntimeRpc).implementation() }],
});
