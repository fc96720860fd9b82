import { Module } from '@nestjs/common';
import { BackendsModule } from '../backends/backends.module';
import { SystemHandlers } from './system.handlers';
import { SystemRoutes } from './system.routes';

@Module({ imports: [BackendsModule], providers: [SystemHandlers, SystemRoutes], exports: [SystemRoutes] })
export class SystemModule {}
