import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { ImageService } from './images.service';
import { ImageStoreRpc } from './image-store.rpc';

@Module({ providers: [...serviceProviders('image-store'), ImageService, ImageStoreRpc] })
export class ImageStoreModule {}
