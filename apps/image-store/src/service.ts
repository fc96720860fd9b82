import { images } from '@stevedore/contracts';
import { grpcServiceStart } from '@stevedore/service-kit';
import { ImageArchive } from './image-archive';
import { ImageService } from './images.service';
import { ImageStoreRpc } from './image-store.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'image-store',
  async compose({ config, log }) {
    const service = new ImageService(config, log);
    service.start();
    const rpc = new ImageStoreRpc(config, log, service, new ImageArchive(service, log));
    return {
      bindings: [{ definition: images.ImageStoreService, implementation: rpc.implementation() }],
      stop: () => service.stop(),
    };
  },
});
