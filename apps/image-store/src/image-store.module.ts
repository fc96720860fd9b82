import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { ImageArchive } from './image-archive';
import { ImageService } from './images.service';
import { ImageStoreRpc } from './image-store.rpc';

@Module({ providers: [...serviceProviders('image-store'), ImageService, ImageArchive, ImageStoreRpc] })
export class ImageStoreModule {}
