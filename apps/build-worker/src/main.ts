import { builds } from '@stevedore/contracts';
import { runGrpcService } from '@stevedore/service-kit';
import { BuildWorkerModule } from './build-worker.module';
import { BuildWorkerRpc } from './build-worker.rpc';

void runGrpcService({
  name: 'build-worker',
  module: BuildWorkerModule,
  bindings: (app) => [{ definition: builds.BuildWorkerService, implementation: app.get(BuildWorkerRpc).implementation() }],
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
