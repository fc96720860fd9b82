import { builds } from '@stevedore/contracts';
import { startGrpcService } from '@stevedore/service-kit';
import { BuildWorkerModule } from './build-worker.module';
import { BuildWorkerRpc } from './build-worker.rpc';

startGrpcService({
  name: 'build-worker',
  module: BuildWorkerModule,
  bindings: (app) => [{ definition: builds.BuildWorkerService, implementation: app.get(BuildWorkerRpc).implementation() }],
});
