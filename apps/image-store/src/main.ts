import { images } from '@stevedore/contracts';
import { runGrpcService } from '@stevedore/service-kit';
import { ImageStoreModule } from './image-store.module';
import { ImageStoreRpc } from './image-store.rpc';

void runGrpcService({
  name: 'image-store',
  module: ImageStoreModule,
  bindings: (app) => [{ definition: images.ImageStoreService, implementation: app.get(ImageStoreRpc).implementation() }],
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
