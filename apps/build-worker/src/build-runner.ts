// Takes build jobs from the BullMQ queue and runs them; keeps the promise
// that no intermediate container outlives its build unless the rules keep it:
// - this worker says it is alive (a key with a short expiry, renewed);
// - each build it runs is recorded with the worker's ID, and each of the
//   build's containers by name before it is created (the builder does that);
// - a sweep, at start-up, every few seconds and when BullMQ reports a job
//   stalled, finds the builds whose worker is no longer alive, removes their
//   containers and ends their output with an error (their client is told);
// - a cancellation (the client went away) aborts the build, which then
//   removes its containers.
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { Worker, type Job } from 'bullmq';
import { appendOutput, BuildKeys, deleteContextStream, OutputWriter, QUEUE_NAME, queueConnection, WORKER_ALIVE_TTL_MS, type BuildJob, type OutputEntry } from '@stevedore/builds';
import type { StevedoreConfig } from '@stevedore/config';
import { containers, images } from '@stevedore/contracts';
import { asStevedoreError } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import { BlockingConnections, connectRedis, type Redis } from '@stevedore/redis';
import { callUnary, createServiceClient, privateDir } from '@stevedore/service-kit';
import { BuildCancelled, Builder } from './builder';
import { fetchContext, remoteContext } from './context';

const SWEEP_INTERVAL_MS = 3000;

export class BuildRunner {
  readonly workerId = `${hostname()}:${process.pid}`;
  readonly concurrency: number;
  private readonly contextMax: number;
  private readonly keys: BuildKeys;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly queueRedis: Redis;
  /** Connections for reading contexts as they arrive (each read blocks its connection). */
  private readonly readers: BlockingConnections;
  private readonly runtime: containers.ContainerRuntimeClient;
  private readonly store: images.ImageStoreClient;
  private readonly active = new Map<string, AbortController>();
  private readonly workDir: string;
  private worker?: Worker<BuildJob>;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly config: StevedoreConfig,
    private readonly log: Logger,
  ) {
    this.concurrency = config.build.concurrency;
    this.contextMax = config.build.contextMaxBytes;
    this.keys = new BuildKeys(config.redisPrefix);
    this.redis = connectRedis(config.redisUrl);
    this.subscriber = connectRedis(config.redisUrl);
    this.queueRedis = queueConnection(config.redisUrl);
    this.readers = new BlockingConnections(config.redisUrl, 4);
    this.runtime = createServiceClient(containers.ContainerRuntimeClient, config, 'container-runtime');
    this.store = createServiceClient(images.ImageStoreClient, config, 'image-store');
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
      connection: this.queueRedis,
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

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const c of this.active.values()) c.abort();
    await this.worker?.close();
    this.queueRedis.disconnect();
    this.readers.close();
    await this.redis.del(this.keys.alive(this.workerId)).catch(() => undefined);
    this.subscriber.disconnect();
    this.redis.disconnect();
    this.runtime.close();
    this.store.close();
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
      const builder = new Builder(
        { ...o, context, workDir: buildDir },
        {
          runtime: this.runtime,
          store: this.store,
          output,
          record: async (name) => void (await this.redis.sadd(this.keys.containers(o.buildId), name)),
          forget: async (name) => void (await this.redis.srem(this.keys.containers(o.buildId), name)),
        },
        controller.signal,
      );
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
        try {
          for (const name of names) {
            await callUnary(this.runtime, this.runtime.remove as never, { id: name, force: true, volumes: true }, `sweep-${buildId}`, 60_000).catch((err) => {
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
