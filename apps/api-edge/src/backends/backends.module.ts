import { Global, Module } from '@nestjs/common';
import { CONFIG, CONTEXT_PROVIDERS, LOGGER } from '../nest-context';
import { Backends } from './backends';
import { RemovalsInFlight } from './removals-in-flight';

/** The config, the logger, the service clients and the removals in flight, for every domain module. */
@Global()
@Module({ providers: [...CONTEXT_PROVIDERS, Backends, RemovalsInFlight], exports: [CONFIG, LOGGER, Backends, RemovalsInFlight] })
export class BackendsModule {}
