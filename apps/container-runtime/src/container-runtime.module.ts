import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { ContainerRuntimeRpc } from './container-runtime.rpc';

@Module({ providers: [...serviceProviders('container-runtime'), ContainerRuntimeRpc] })
export class ContainerRuntimeModule {}
