import { Module } from '@nestjs/common';
import { BackendsModule } from './backends/backends.module';
import { BuildModule } from './build/build.module';
import { BuildRoutes } from './build/build.routes';
import { ContainersModule } from './containers/containers.module';
import { ContainersRoutes } from './containers/containers.routes';
import { EventsModule } from './events/events.module';
import { EventsRoutes } from './events/events.routes';
import { ExecModule } from './exec/exec.module';
import { ExecRoutes } from './exec/exec.routes';
import { ImagesModule } from './images/images.module';
import { ImagesRoutes } from './images/images.routes';
import { HttpFront, ROUTER } from './http/http-front';
import { DockerRouter } from './http/router';
import { SystemModule } from './system/system.module';
import { SystemRoutes } from './system/system.routes';

/** Every domain's route table, in one router. */
const ROUTE_TABLES = [SystemRoutes, EventsRoutes, ImagesRoutes, ContainersRoutes, ExecRoutes, BuildRoutes];

@Module({
  imports: [BackendsModule, SystemModule, EventsModule, ImagesModule, ContainersModule, ExecModule, BuildModule],
  providers: [
    { provide: ROUTER, useFactory: (...tables: SystemRoutes[]) => new DockerRouter(tables), inject: ROUTE_TABLES },
    HttpFront,
  ],
})
export class AppModule {}
