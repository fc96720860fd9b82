import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { ContainersService } from './containers.service';
import { ContainerRuntimeRpc } from './container-runtime.rpc';

@Module({ providers: [...serviceProviders('container-runtime'), ContainersService, ContainerRuntimeRpc] })
export class ContainerRuntimeModule {}
