import { Global, Module } from '@nestjs/common';
import { CONFIG, CONTEXT_PROVIDERS, LOGGER } from '../nest-context';
import { Backends } from './backends';
import { ClusterView } from './cluster-view';
import { ContainerRouter } from './container-router';
import { RemovalsInFlight } from './removals-in-flight';

/** The config, the logger, the service clients, the cluster's nodes and the removals in flight, for every domain module. */
@Global()
@Module({ providers: [...CONTEXT_PROVIDERS, Backends, ClusterView, ContainerRouter, RemovalsInFlight], exports: [CONFIG, LOGGER, Backends, ClusterView, ContainerRouter, RemovalsInFlight] })
export class BackendsModule {}
