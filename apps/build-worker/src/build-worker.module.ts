import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { BuildWorkerRpc } from './build-worker.rpc';

@Module({ providers: [...serviceProviders('build-worker'), BuildWorkerRpc] })
export class BuildWorkerModule {}
