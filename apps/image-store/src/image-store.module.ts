import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { ImageStoreRpc } from './image-store.rpc';

@Module({ providers: [...serviceProviders('image-store'), ImageStoreRpc] })
export class ImageStoreModule {}
