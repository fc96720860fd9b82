// The BuildWorker gRPC service: what this worker is and how busy it is.
// (Builds arrive through the queue, not through this service.)
import { Inject, Injectable } from '@nestjs/common';
import { builds } from '@stevedore/contracts';
import type { Logger } from '@stevedore/logging';
import { LOGGER, unary } from '@stevedore/service-kit';
import { BuildRunner } from './build-runner';

@Injectable()
export class BuildWorkerRpc {
  constructor(
    @Inject(LOGGER) private readonly log: Logger,
    private readonly runner: BuildRunner,
  ) {}

  implementation(): builds.BuildWorkerServer {
    return {
      info: unary<builds.WorkerInfoRequest, builds.WorkerInfo>(this.log, 'Info', async () => ({
        workerId: this.runner.workerId,
        concurrency: this.runner.concurrency,
        activeBuilds: this.runner.activeBuilds,
      })),
    };
  }
}
