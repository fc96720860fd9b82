import { images } from '@stevedore/contracts';
import { grpcServiceStart } from '@stevedore/service-kit';
import { ImageStoreModule } from './image-store.module';
import { ImageStoreRpc } from './image-store.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'image-store',
  module: ImageStoreModule,
  bindings: (app) => [{ definition: images.ImageStoreService, implementation: app.get(ImageStoreRpc).implementation() }],
});
