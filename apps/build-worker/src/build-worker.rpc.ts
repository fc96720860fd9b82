// The BuildWorker gRPC service. (Builds themselves arrive with the build farm issue.)
import { hostname } from 'node:os';
import { Inject, Injectable } from '@nestjs/common';
import { builds } from '@stevedore/contracts';
import type { Logger } from '@stevedore/logging';
import { LOGGER, unary } from '@stevedore/service-kit';

@Injectable()
export class BuildWorkerRpc {
  readonly workerId = `${hostname()}:${process.pid}`;
  readonly concurrency = Number(process.env.STEVEDORE_BUILD_CONCURRENCY || 2);

  constructor(@Inject(LOGGER) private readonly log: Logger) {}

  implementation(): builds.BuildWorkerServer {
    return {
      info: unary<builds.WorkerInfoRequest, builds.WorkerInfo>(this.log, 'Info', async () => ({
        workerId: this.workerId,
        concurrency: this.concurrency,
        activeBuilds: 0,
      })),
    };
  }
}
