import { grpcServiceStart } from '@stevedore/service-kit';
import { BuildRunner } from './build-runner';

/**
 * Starts the service (its own process, or the supervisor's with
 * STEVEDORE_PROCESSES=one). Builds arrive through the queue: the worker
 * serves only gRPC health, for the supervisor's probes.
 */
export const start = grpcServiceStart({
  name: 'build-worker',
  async compose({ config, log }) {
    const runner = new BuildRunner(config, log);
    await runner.start();
    return { bindings: [], stop: () => runner.stop() };
  },
});
