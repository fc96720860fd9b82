import { containers } from '@stevedore/contracts';
import { grpcServiceStart } from '@stevedore/service-kit';
import { ContainersService } from './containers.service';
import { ContainerRuntimeRpc } from './container-runtime.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'container-runtime',
  async compose({ config, log }) {
    const service = new ContainersService(config, log);
    await service.open();
    return {
      bindings: [{ definition: containers.ContainerRuntimeService, implementation: new ContainerRuntimeRpc(log, service).implementation() }],
      stop: () => service.close(),
    };
  },
});
