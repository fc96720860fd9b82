import { Global, Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { Backends } from './backends';

/** The config, the logger and the service clients, for every domain module. */
@Global()
@Module({ providers: [...serviceProviders('api-edge'), Backends], exports: [...serviceProviders('api-edge').map((p) => p.provide), Backends] })
export class BackendsModule {}
