// The ContainerRuntime gRPC service. (Containers themselves arrive with the container runtime issue.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { containers } from '@stevedore/contracts';
import type { StevedoreConfig } from '@stevedore/config';
import type { Logger } from '@stevedore/logging';
import { CONFIG, LOGGER, unary } from '@stevedore/service-kit';
import { cgroupFacts, chooseOciRuntime, ipv4Forwarding, type OciRuntime } from './host-facts';

@Injectable()
export class ContainerRuntimeRpc {
  private readonly runtime: OciRuntime;

  constructor(
    @Inject(CONFIG) private readonly config: StevedoreConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.runtime = chooseOciRuntime(config.runtime);
    log.info({ runtime: this.runtime }, 'OCI runtime chosen');
  }

  implementation(): containers.ContainerRuntimeServer {
    return {
      info: unary<containers.RuntimeInfoRequest, containers.RuntimeInfo>(this.log, 'Info', async () => {
        const dir = path.join(this.config.root, 'containers');
        const count = fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
        const cgroups = cgroupFacts();
        return {
          containers: count,
          running: 0,
          paused: 0,
          stopped: count,
          ociRuntime: this.runtime.name,
          ociRuntimeVersion: this.runtime.version,
          memoryLimit: cgroups.memoryLimit,
          swapLimit: cgroups.swapLimit,
          ipv4Forwarding: ipv4Forwarding(),
          cgroupVersion: cgroups.version,
        };
      }),
    };
  }
}
