// Where a build waits for a worker. Every worker takes builds from the
// shared queue; on a cluster each node's workers also take from their
// node's own queue, which holds the builds that must or should run there:
// one whose constraints or platform only some nodes meet (queued at the
// node among those with the most free build slots), and one a worker handed
// to a node that holds FROM's layers. BullMQ gives a build no worker
// renews the lock of back to its queue; a node's queue whose node has no
// live worker any more is emptied by the other workers' sweep (BuildQueues
// is shared by the edge, which adds builds, and the workers).
import { Queue } from 'bullmq';
import type { Redis } from '@stevedore/redis';
import { mayRun, nodeLoads } from './farm';
import type { BuildJob, BuildKeys } from './index';

export const QUEUE_NAME = 'builds';

/** A node's own queue. */
export function nodeQueueName(node: string): string {
  return `${QUEUE_NAME}@${node}`;
}

/** How long the record of where a build was queued is kept (a build ends long before). */
const QUEUED_TTL_SECONDS = 24 * 3600;

/** No live worker may run the build (its constraints or platform). */
export class NoNodeForBuild extends Error {}

/** What a build asks of its node, for messages. */
export function askedOf(job: Pick<BuildJob, 'constraints' | 'platform'>): string {
  return [...job.constraints, ...(job.platform ? [`platform ${job.platform}`] : [])].join(', ');
}

export class BuildQueues {
  private readonly queues = new Map<string, Queue<BuildJob>>();

  constructor(
    /** From queueConnection(). */
    private readonly connection: Redis,
    /** For the workers' records. */
    private readonly redis: Redis,
    private readonly keys: BuildKeys,
  ) {}

  /** The queue of a node ('' for the shared one). */
  queue(node: string): Queue<BuildJob> {
    const name = node ? nodeQueueName(node) : QUEUE_NAME;
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue<BuildJob>(name, { connection: this.connection, prefix: this.keys.bull });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Queues a build: on `to`'s queue when given; else on the shared queue,
   * unless it asks for constraints or a platform: then on the queue of the
   * node among those that meet them with the most free slots. Resolves with
   * the node chosen ('' for the shared queue); NoNodeForBuild when no live
   * worker may run it.
   */
  async add(job: BuildJob, to?: string): Promise<string> {
    const node = to ?? (job.constraints.length || job.platform ? await this.choose(job) : '');
    // First the pointer: a copy left in the queue it comes from is stale from now on (see stale()).
    await this.redis.set(this.keys.queued(job.buildId), node, 'EX', QUEUED_TTL_SECONDS);
    await this.queue(node).add('build', job, { jobId: job.buildId, removeOnComplete: true, removeOnFail: true });
    return node;
  }

  /**
   * Whether a job taken from `node`'s queue is a stale copy: the build was
   * queued elsewhere since (handed over, or queued again by a sweep) and the
   * worker that moved it died before its own copy was done with.
   */
  async stale(buildId: string, node: string): Promise<boolean> {
    const queued = await this.redis.get(this.keys.queued(buildId));
    return queued !== null && queued !== node;
  }

  /** The build has ended: no queue holds it any more. */
  async ended(buildId: string): Promise<void> {
    await this.redis.del(this.keys.queued(buildId));
  }

  private async choose(job: BuildJob): Promise<string> {
    const loads = await nodeLoads(this.redis, this.keys, (w) => mayRun(w, job));
    const free = (l: { slots: number; running: number }) => l.slots - l.running;
    const [best] = [...loads].sort(([a, x], [b, y]) => free(y) - free(x) || a.localeCompare(b));
    if (!best) throw new NoNodeForBuild(`unable to find a node that runs builds and satisfies ${askedOf(job)}`);
    return best[0];
  }

  /** Whether the queue the build was last added to still holds it. */
  async holds(buildId: string): Promise<boolean> {
    const node = await this.redis.get(this.keys.queued(buildId));
    return node !== null && Boolean(await this.queue(node).getJob(buildId));
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
