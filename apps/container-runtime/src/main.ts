import { containers } from '@stevedore/contracts';
import { startGrpcService } from '@stevedore/service-kit';
import { ContainerRuntimeModule } from './container-runtime.module';
import { ContainerRuntimeRpc } from './container-runtime.rpc';

startGrpcService({
  name: 'container-runtime',
  module: ContainerRuntimeModule,
  bindings: (app) => [{ definition: containers.ContainerRuntimeService, implementation: app.get(ContainerRuntimeRpc).implementation() }],
});
