import { queueConnection } from '@stevedore/builds';
import { containers, images } from '@stevedore/contracts';
import { BlockingConnections, connectRedis } from '@stevedore/redis';
import { connectService, grpcServiceStart } from '@stevedore/service-kit';
import { BuildRunner, type BuildRunnerConnections } from './build-runner';

/**
 * Starts the service (its own process, or the supervisor's with
 * STEVEDORE_PROCESSES=one). Builds arrive through the queue: the worker
 * serves only gRPC health, for the supervisor's probes.
 */
export const start = grpcServiceStart({
  name: 'build-worker',
  async compose({ config, log }) {
    const connections: BuildRunnerConnections = {
      redis: connectRedis(config.redisUrl),
      subscriber: connectRedis(config.redisUrl),
      queue: queueConnection(config.redisUrl),
      readers: new BlockingConnections(config.redisUrl, 4),
      runtime: connectService(containers.ContainerRuntimeService, config, 'container-runtime'),
      store: connectService(images.ImageStoreService, config, 'image-store'),
    };
    const runner = new BuildRunner(config, log, connections);
    await runner.start();
    return {
      bindings: [],
      async stop() {
        await runner.stop();
        connections.queue.disconnect();
        connections.readers.close();
        connections.subscriber.disconnect();
        connections.redis.disconnect();
        connections.runtime.close();
        connections.store.close();
      },
    };
  },
});
