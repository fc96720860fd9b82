import { builds } from '@stevedore/contracts';
import { grpcServiceStart } from '@stevedore/service-kit';
import { BuildWorkerModule } from './build-worker.module';
import { BuildWorkerRpc } from './build-worker.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'build-worker',
  module: BuildWorkerModule,
  bindings: (app) => [{ definition: builds.BuildWorkerService, implementation: app.get(BuildWorkerRpc).implementation() }],
});
