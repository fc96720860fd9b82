import * as path from 'node:path';
import { images } from '@stevedore/contracts';
import { connectRedis, EventLog } from '@stevedore/redis';
import { grpcServiceStart, privateDatabase, privateDir, requireTls, serve } from '@stevedore/service-kit';
import { ImageArchive } from './image-archive';
import { ImageService } from './images.service';
import { ImageStoreRpc } from './image-store.rpc';
import { LayerBlobs } from './layer-blobs';
import { BlobStore } from './store/blob-store';
import { ImageDb } from './store/image-db';
import { LayerImages } from './store/layer-images';
import { LayerStore } from './store/layer-store';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'image-store',
  async compose({ config, log }) {
    // Layers, blobs and the database: root's alone (images/ 0700 keeps other users out of everything below).
    const root = privateDir(path.join(config.root, 'images'));
    const db = new ImageDb(privateDatabase(path.join(root, 'images.db')));
    const layers = new LayerStore(root);
    const { removed } = layers.sweep(db.layerNames());
    if (removed.length) log.info({ removed }, 'swept unfinished layers');
    const redis = connectRedis(config.redisUrl);
    const layerImages = new LayerImages(db, layers);
    const service = new ImageService(db, layers, layerImages, new EventLog(redis, config.redisPrefix, config.events), log);
    const archive = new ImageArchive(db, layers, layerImages);
    const layerBlobs = new LayerBlobs(db, layers, log);
    // A cluster's nodes fetch the layers they lack from here.
    const blobServer = config.layerBlobsAddress ? await layerBlobs.listen(config.layerBlobsAddress, requireTls(config.layerBlobsAddress, config.grpcTls)) : undefined;
    const rpc = new ImageStoreRpc(config, log, service, archive, new BlobStore(path.join(root, 'blobs')), layerBlobs);
    return {
      bindings: [serve(images.ImageStoreService, log, rpc.handlers())],
      stop: async () => {
        blobServer?.close();
        db.close();
        await redis.quit().catch(() => undefined);
      },
    };
  },
});
