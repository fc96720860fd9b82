// Which builds a worker takes, and when it hands one to another node. Every
// worker takes builds from the one queue; one that may not run a build (its
// node lacks a label the build's constraints ask for, or the platform) gives
// it back to the queue for a moment, so that a worker that may takes it;
// when no live worker may any more, the build fails. Once a build's
// Dockerfile is read, a node that does not hold FROM's layers hands the
// build to one that does and has a free slot (once per build): for a few
// seconds only that node takes it.
import type { HeldImages } from '@stevedore/cluster';
import { liveWorkers, mayRun, type BuildJob, type BuildKeys, type BuildRuns, type WorkerRecord } from '@stevedore/builds';
import type { Redis } from '@stevedore/redis';

/** How long only the node a build was handed to may take it. */
export const HAND_OVER_MS = 3000;

export type PassOver = 'wait' | 'refuse';

export class FarmPlacement {
  constructor(
    private readonly redis: Redis,
    private readonly keys: BuildKeys,
    private readonly runs: BuildRuns,
    private readonly held: HeldImages | undefined,
    readonly self: WorkerRecord,
  ) {}

  async register(): Promise<void> {
    await this.redis.hset(this.keys.workers, this.self.worker, JSON.stringify(this.self));
  }

  async unregister(): Promise<void> {
    await this.redis.hdel(this.keys.workers, this.self.worker);
  }

  private workers(): Promise<WorkerRecord[]> {
    return liveWorkers(this.redis, this.keys);
  }

  /**
   * Whether this worker should leave the build: `wait` (another worker
   * should take it: give it back to the queue), `refuse` (no live worker may
   * run it), undefined to run it.
   */
  async passOver(job: BuildJob): Promise<PassOver | undefined> {
    if (!mayRun(this.self, job)) return (await this.workers()).some((w) => mayRun(w, job)) ? 'wait' : 'refuse';
    const to = job.handedTo;
    if (to && to.node !== this.self.node && Date.now() < to.until && (await this.workers()).some((w) => w.node === to.node)) return 'wait';
    return undefined;
  }

  /** A node to hand the build to: one that holds `imageId`'s layers, may run the build and has a free slot; undefined to build here. */
  async betterNode(job: BuildJob, imageId: string): Promise<string | undefined> {
    const { held, self } = this;
    if (!held || !self.node || job.handedTo) return undefined;
    if ((await held.holders(imageId, [self.node])).length) return undefined;
    const slots = new Map<string, number>();
    for (const w of await this.workers()) if (w.node !== self.node && mayRun(w, job)) slots.set(w.node, (slots.get(w.node) ?? 0) + w.concurrency);
    for (const { run } of (await this.runs.all()).values()) if (slots.has(run.node)) slots.set(run.node, slots.get(run.node)! - 1);
    const free = [...slots].filter(([, n]) => n > 0).map(([node]) => node);
    const holders = await held.holders(imageId, free);
    return holders.sort((a, b) => slots.get(b)! - slots.get(a)! || a.localeCompare(b))[0];
  }
}
