import { Module } from '@nestjs/common';
import { BuildHandlers } from './build.handlers';
import { BuildRoutes } from './build.routes';

@Module({ providers: [BuildHandlers, BuildRoutes], exports: [BuildRoutes] })
export class BuildModule {}
