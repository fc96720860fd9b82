import { Global, Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { Backends } from './backends';
import { RemovalsInFlight } from './removals-in-flight';

/** The config, the logger, the service clients and the removals in flight, for every domain module. */
@Global()
@Module({ providers: [...serviceProviders('api-edge'), Backends, RemovalsInFlight], exports: [...serviceProviders('api-edge').map((p) => p.provide), Backends, RemovalsInFlight] })
export class BackendsModule {}
