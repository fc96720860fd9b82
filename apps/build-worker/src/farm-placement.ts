// Where a build is better run: once its Dockerfile is read, a node that does
// not hold FROM's layers hands the build to one that does, may run it and
// has a free build slot (once per build), through that node's own queue.
// A worker also registers itself here: its node, labels, platform and how
// many builds it runs at once (what the edge and the other workers place
// builds by).
import type { HeldImages } from '@stevedore/cluster';
import { mayRun, nodeLoads, type BuildJob, type BuildKeys, type WorkerRecord } from '@stevedore/builds';
import type { Redis } from '@stevedore/redis';

export class FarmPlacement {
  constructor(
    private readonly redis: Redis,
    private readonly keys: BuildKeys,
    private readonly held: HeldImages | undefined,
    readonly self: WorkerRecord,
  ) {}

  async register(): Promise<void> {
    await this.redis.hset(this.keys.workers, this.self.worker, JSON.stringify(this.self));
  }

  async unregister(): Promise<void> {
    await this.redis.hdel(this.keys.workers, this.self.worker);
  }

  /** A node to hand the build to: one that holds `imageId`'s layers, may run the build and has a free slot; undefined to build here. */
  async betterNode(job: BuildJob, imageId: string): Promise<string | undefined> {
    const { held, self } = this;
    if (!held || !self.node || job.handedTo) return undefined;
    if ((await held.holders(imageId, [self.node])).length) return undefined;
    const loads = await nodeLoads(this.redis, this.keys, (w) => w.node !== self.node && mayRun(w, job));
    const free = (node: string) => loads.get(node)!.slots - loads.get(node)!.running;
    const holders = await held.holders(imageId, [...loads.keys()].filter((n) => free(n) > 0));
    return holders.sort((a, b) => free(b) - free(a) || a.localeCompare(b))[0];
  }
}
