// Takes build jobs from the BullMQ queue and runs them; keeps the promise
// that no intermediate container outlives its build unless the rules keep it:
// - this worker says it is alive (a key with a short expiry, renewed);
// - each build it runs is recorded with the worker's ID, and each of the
//   build's containers by name before it is created (BuildContainers does that);
// - a sweep, at start-up, every few seconds and when BullMQ reports a job
//   stalled, finds the builds whose worker is no longer alive, removes their
//   containers and ends their output with an error (their client is told);
// - a cancellation (the client went away) aborts the build, which then
//   removes its containers.
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { Worker, type Job } from 'bullmq';
import { appendOutput, BuildKeys, deleteContextStream, OutputWriter, QUEUE_NAME, WORKER_ALIVE_TTL_MS, type BuildJob, type OutputEntry } from '@stevedore/builds';
import type { StevedoreConfig } from '@stevedore/config';
import { asStevedoreError } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import type { BlockingConnections, Redis } from '@stevedore/redis';
import { privateDir } from '@stevedore/service-kit';
import { grpcBuildImageStore, grpcBuildRuntime, type RuntimeClient, type StoreClient } from './build-backends';
import { BuildCache } from './build-cache';
import { BuildContainers } from './build-containers';
import { BuildCancelled, Builder } from './builder';
import { fetchContext, remoteContext } from './context';

const SWEEP_INTERVAL_MS = 3000;

/** The connections a runner works with: the composition root opens them, and closes them once the runner has stopped. */
export interface BuildRunnerConnections {
  /** Build records and output, the worker's heartbeat. */
  redis: Redis;
  /** Subscribed to cancellations (a subscribed connection serves nothing else). */
  subscriber: Redis;
  /** BullMQ's. */
  queue: Redis;
  /** For reading contexts as they arrive (each read blocks its connection). */
  readers: BlockingConnections;
  runtime: RuntimeClient;
  store: StoreClient;
}

export class BuildRunner {
  readonly workerId = `${hostname()}:${process.pid}`;
  readonly concurrency: number;
  private readonly contextMax: number;
  private readonly keys: BuildKeys;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly queue: Redis;
  private readonly readers: BlockingConnections;
  private readonly runtime: RuntimeClient;
  private readonly store: StoreClient;
  private readonly active = new Map<string, AbortController>();
  private readonly workDir: string;
  private worker?: Worker<BuildJob>;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    config: StevedoreConfig,
    private readonly log: Logger,
    connections: BuildRunnerConnections,
  ) {
    this.concurrency = config.build.concurrency;
    this.contextMax = config.build.contextMaxBytes;
    this.keys = new BuildKeys(config.redisPrefix);
    this.redis = connections.redis;
    this.subscriber = connections.subscriber;
    this.queue = connections.queue;
    this.readers = connections.readers;
    this.runtime = connections.runtime;
    this.store = connections.store;
    this.workDir = path.join(config.root, 'builds');
  }

  get activeBuilds(): number {
    return this.active.size;
  }

  async start(): Promise<void> {
    // Contexts of builds that no worker runs any more (this host crashed) are of no use to anybody;
    // other workers of this host keep theirs.
    // Contexts are other people's files: root's alone (builds/ 0700, each build's directory too).
    privateDir(this.workDir);
    const running = await this.redis.hgetall(this.keys.running);
    for (const name of fs.readdirSync(this.workDir)) if (!running[name]) fs.rmSync(path.join(this.workDir, name), { recursive: true, force: true });
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.heartbeat().catch((err) => this.log.warn({ err }, 'heartbeat failed')), WORKER_ALIVE_TTL_MS / 3));
    await this.subscriber.subscribe(this.keys.cancel);
    this.subscriber.on('message', (_channel: string, buildId: string) => this.active.get(buildId)?.abort());
    await this.sweep();
    this.timers.push(setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS));
    this.worker = new Worker<BuildJob>(QUEUE_NAME, (job) => this.process(job), {
      connection: this.queue,
      prefix: this.keys.bull,
      concurrency: this.concurrency,
      // A worker that died holds its job's lock for this long at most; the job then fails as stalled (never runs twice).
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 0,
    });
    this.worker.on('failed', (job, err) => {
      if (/stalled/i.test(err.message)) void this.sweep();
      this.log.info({ build: job?.data.buildId, err: err.message }, 'build job failed');
    });
    this.worker.on('error', (err) => this.log.warn({ err }, 'build queue error'));
  }

  /** Takes no more builds, cancels those it runs, and says it is gone. Its connections stay open. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const c of this.active.values()) c.abort();
    await this.worker?.close();
    await this.redis.del(this.keys.alive(this.workerId)).catch(() => undefined);
  }

  private async heartbeat(): Promise<void> {
    await this.redis.set(this.keys.alive(this.workerId), '1', 'PX', WORKER_ALIVE_TTL_MS);
  }

  private async process(job: Job<BuildJob>): Promise<void> {
    const o = job.data;
    const taken = Date.now();
    const controller = new AbortController();
    this.active.set(o.buildId, controller);
    const [cancelled] = await Promise.all([this.redis.exists(this.keys.cancelled(o.buildId)), this.redis.hset(this.keys.running, o.buildId, this.workerId)]);
    if (cancelled) controller.abort();
    const buildDir = path.join(this.workDir, o.buildId);
    const log = this.log.child({ build: o.buildId, reqId: o.requestId });
    const writer = new OutputWriter(this.redis, this.keys, o.buildId);
    const output = (entry: OutputEntry): Promise<void> => writer.write(entry);
    try {
      fs.mkdirSync(buildDir, { mode: 0o700 });
      const context = o.remote
        ? await remoteContext(o.remote, buildDir, this.contextMax)
        : await this.readers.use((redis) =>
            fetchContext({ redis, keys: this.keys, buildId: o.buildId, store: this.store, requestId: o.requestId, signal: controller.signal }, buildDir, this.contextMax),
          );
      context.applyDockerignore();
      log.debug({ queuedMs: taken - job.timestamp, contextMs: Date.now() - taken }, 'context ready');
      const store = grpcBuildImageStore(this.store, this.runtime, o.requestId);
      const buildContainers = new BuildContainers(
        o.buildId,
        grpcBuildRuntime(this.runtime, o.requestId),
        {
          record: async (name) => void (await this.redis.sadd(this.keys.containers(o.buildId), name)),
          forget: async (name) => void (await this.redis.srem(this.keys.containers(o.buildId), name)),
        },
        (text) => output({ kind: 'out', text }),
      );
      const cache = new BuildCache(store, o.nocache);
      const builder = new Builder({ ...o, context, workDir: buildDir }, { store, containers: buildContainers, cache, output }, controller.signal);
      const started = Date.now();
      const image = await builder.run();
      log.info({ image, tag: o.tag, stepsMs: Date.now() - started }, 'built');
      await output({ kind: 'done', text: image });
    } catch (err) {
      const e = asStevedoreError(err);
      log.info({ err: e.message, cancelled: err instanceof BuildCancelled }, 'build failed');
      await output({ kind: 'error', text: e.message });
    } finally {
      this.active.delete(o.buildId);
      await fs.promises.rm(buildDir, { recursive: true, force: true });
      if (!o.remote) await deleteContextStream(this.redis, this.keys, o.buildId).catch(() => undefined);
      await this.redis.hdel(this.keys.running, o.buildId);
    }
  }

  /**
   * Builds whose worker is not alive any more: their containers removed,
   * their output ended. Claimed by deleting the build's record, so that two
   * sweepers never both do it.
   */
  async sweep(): Promise<void> {
    try {
      const running = await this.redis.hgetall(this.keys.running);
      for (const [buildId, workerId] of Object.entries(running)) {
        if (this.active.has(buildId)) continue;
        if (workerId === this.workerId || (await this.redis.exists(this.keys.alive(workerId)))) continue;
        if ((await this.redis.hdel(this.keys.running, buildId)) !== 1) continue;
        const names = await this.redis.smembers(this.keys.containers(buildId));
        const runtime = grpcBuildRuntime(this.runtime, `sweep-${buildId}`);
        try {
          for (const name of names) {
            await runtime.remove(name).catch((err) => {
              if (asStevedoreError(err).kind !== 'notFound') throw err;
            });
            await this.redis.srem(this.keys.containers(buildId), name);
          }
        } catch (err) {
          // Given back: the next sweep tries again.
          await this.redis.hset(this.keys.running, buildId, workerId);
          throw err;
        }
        fs.rmSync(path.join(this.workDir, buildId), { recursive: true, force: true });
        await appendOutput(this.redis, this.keys, buildId, { kind: 'error', text: `The build worker running this build (${workerId}) stopped; its intermediate containers were removed` });
        this.log.warn({ build: buildId, worker: workerId, containers: names.length }, 'swept the build of a dead worker');
      }
    } catch (err) {
      this.log.warn({ err }, 'sweep failed');
    }
  }
}
