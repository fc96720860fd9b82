import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { BuildRunner } from './build-runner';
import { BuildWorkerRpc } from './build-worker.rpc';

@Module({ providers: [...serviceProviders('build-worker'), BuildRunner, BuildWorkerRpc] })
export class BuildWorkerModule {}
