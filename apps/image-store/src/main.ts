import { images } from '@stevedore/contracts';
import { startGrpcService } from '@stevedore/service-kit';
import { ImageStoreModule } from './image-store.module';
import { ImageStoreRpc } from './image-store.rpc';

startGrpcService({
  name: 'image-store',
  module: ImageStoreModule,
  bindings: (app) => [{ definition: images.ImageStoreService, implementation: app.get(ImageStoreRpc).implementation() }],
});
