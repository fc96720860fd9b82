import { containers } from '@stevedore/contracts';
import { runGrpcService } from '@stevedore/service-kit';
import { ContainerRuntimeModule } from './container-runtime.module';
import { ContainerRuntimeRpc } from './container-runtime.rpc';

void runGrpcService({
  name: 'container-runtime',
  module: ContainerRuntimeModule,
  bindings: (app) => [{ definition: containers.ContainerRuntimeService, implementation: app.get(ContainerRuntimeRpc).implementation() }],
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
