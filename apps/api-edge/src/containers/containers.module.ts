import { Module } from '@nestjs/common';
import { ContainersHandlers } from './containers.handlers';
import { ContainersRoutes } from './containers.routes';

@Module({ providers: [ContainersHandlers, ContainersRoutes], exports: [ContainersRoutes] })
export class ContainersModule {}
