import { Module } from '@nestjs/common';
import { ImagesHandlers } from './images.handlers';
import { ImagesRoutes } from './images.routes';

@Module({ providers: [ImagesHandlers, ImagesRoutes], exports: [ImagesRoutes] })
export class ImagesModule {}
