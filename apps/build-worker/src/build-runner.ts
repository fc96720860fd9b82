// Takes build jobs from the BullMQ queue and runs them; keeps the promise
// that no intermediate container outlives its build unless the rules keep
// it, and that a build whose worker or node stops runs again elsewhere:
// - this worker says it is alive (a key with a short expiry, renewed); one
//   that could not say so for LOST_AFTER_MS stops its builds itself (another
//   worker is about to take them), and its output is fenced (farm.ts);
// - a run claims its build (farm.ts), and records each container's name
//   before creating it (BuildContainers); a claim that finds an earlier run
//   hands that run's containers to its node, and tells the client the build
//   starts again;
// - BullMQ gives a build whose worker stopped renewing its lock back to the
//   queue (MAX_FAILOVERS times at most: a build that keeps killing the
//   workers that run it is then given up);
// - a sweep, at start-up and every few seconds, hands the containers of
//   runs whose worker is dead to their node, ends the output of builds the
//   queues gave up, queues elsewhere the builds waiting in the queue of a
//   node without a live worker, and removes the containers handed to this
//   worker's node;
// - builds come from the shared queue and this node's own (build-queues.ts),
//   at most `concurrency` at once from both;
// - a cancellation (the client went away) aborts the build, which then
//   removes its containers.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { DelayedError, Worker, type Job } from 'bullmq';
import {
  appendOutput,
  askedOf,
  BuildKeys,
  BuildQueues,
  BuildRuns,
  deleteContextStream,
  hostPlatform,
  liveWorkers,
  mayRun,
  NoNodeForBuild,
  nodeQueueName,
  OutputWriter,
  QUEUE_NAME,
  WORKER_ALIVE_TTL_MS,
  type BuildJob,
  type BuildRun,
  type OutputEntry,
} from '@stevedore/builds';
import { HeldImages, Membership } from '@stevedore/cluster';
import type { StevedoreConfig } from '@stevedore/config';
import { asStevedoreError } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import type { BlockingConnections, Redis } from '@stevedore/redis';
import { privateDir } from '@stevedore/service-kit';
import { grpcBuildImageStore, grpcBuildRuntime, type RuntimeClient, type StoreClient } from './build-backends';
import { BuildCache } from './build-cache';
import { BuildContainers, containerNamePrefix } from './build-containers';
import * as metrics from './build-metrics';
import { BuildCancelled, Builder, StepFailed } from './builder';
import { fetchContext, remoteContext, type BuildContext } from './context';
import { parseDockerfile } from './dockerfile';
import { FarmPlacement } from './farm-placement';
import { Slots } from './slots';
import { StepLeases } from './step-leases';

const SWEEP_INTERVAL_MS = 3000;
/** BullMQ's lock on a job a worker runs: renewed every half of it; a worker silent this long has lost the build. */
const LOCK_MS = 10_000;
/** A worker that could not renew its liveness this long stops its builds (before its lock is lost). */
const LOST_AFTER_MS = 6000;
/** How many times BullMQ gives a build whose worker stopped back to its queue. */
const MAX_FAILOVERS = 2;
/** Runs of one build at most, whichever way it came back (BullMQ's stalls, a node's queue emptied, a worker cut off). */
const MAX_ATTEMPTS = 4;

/** The node a queue is for ('' for the shared one). */
function queueNode(queueName: string): string {
  return queueName === QUEUE_NAME ? '' : queueName.slice(QUEUE_NAME.length + 1);
}

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

/** A build this worker runs: how to stop it, and why it was stopped. */
interface ActiveBuild {
  controller: AbortController;
  /** Stopped because another run holds it now, or will: it ends without a word. */
  lost: boolean;
}

export class BuildRunner {
  readonly workerId: string;
  readonly concurrency: number;
  private readonly node: string;
  private readonly contextMax: number;
  private readonly keys: BuildKeys;
  private readonly runs: BuildRuns;
  private readonly placement: FarmPlacement;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly queue: Redis;
  private readonly readers: BlockingConnections;
  private readonly runtime: RuntimeClient;
  private readonly store: StoreClient;
  private readonly active = new Map<string, ActiveBuild>();
  private readonly workDir: string;
  private readonly queues: BuildQueues;
  private readonly slots: Slots;
  private readonly membership?: Membership;
  private workers: Array<Worker<BuildJob>> = [];
  private timers: NodeJS.Timeout[] = [];
  private lastBeat = performance.now();

  constructor(
    config: StevedoreConfig,
    private readonly log: Logger,
    connections: BuildRunnerConnections,
  ) {
    this.node = config.node?.name ?? '';
    // The nonce: a worker started again may have its predecessor's PID (in a container, say).
    this.workerId = `${this.node ? `${this.node}/` : ''}${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
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
    this.runs = new BuildRuns(this.redis, this.keys);
    this.queues = new BuildQueues(this.queue, this.redis, this.keys);
    // The shared queue's worker stops taking builds while every slot is busy (a node's own builds wait for a slot).
    this.slots = new Slots(this.concurrency, (full) => {
      const shared = this.workers[0];
      if (full) void shared?.pause(true);
      else shared?.resume();
    });
    if (this.node) this.membership = new Membership(this.redis, config.redisPrefix);
    this.placement = new FarmPlacement(this.redis, this.keys, this.node ? new HeldImages(this.redis, config.redisPrefix) : undefined, {
      worker: this.workerId,
      node: this.node,
      concurrency: this.concurrency,
      labels: config.node?.labels ?? {},
      platform: hostPlatform(),
    });
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
    this.timers.push(setInterval(() => this.stopIfCutOff(), 1000));
    await this.subscriber.subscribe(this.keys.cancel);
    this.subscriber.on('message', (_channel: string, buildId: string) => this.active.get(buildId)?.controller.abort());
    metrics.queueDepthGauge(async () => {
      const counts = await Promise.all(['', this.node].map((n) => this.queues.queue(n).getJobCounts('wait', 'delayed', 'prioritized', 'paused')));
      return counts.flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0);
    });
    await this.sweep();
    this.timers.push(setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS));
    for (const name of this.node ? [QUEUE_NAME, nodeQueueName(this.node)] : [QUEUE_NAME]) {
      const worker = new Worker<BuildJob>(name, (job, token) => this.process(job, token ?? ''), {
        connection: this.queue,
        prefix: this.keys.bull,
        concurrency: this.concurrency,
        // A worker that died holds its job's lock for this long at most; the job then goes back to the queue (never runs twice at once).
        lockDuration: LOCK_MS,
        stalledInterval: 5_000,
        maxStalledCount: MAX_FAILOVERS,
      });
      worker.on('failed', (job, err) => {
        if (/stalled/i.test(err.message)) void this.sweep();
        this.log.info({ build: job?.data.buildId, err: err.message }, 'build job failed');
      });
      worker.on('error', (err) => this.log.warn({ err }, 'build queue error'));
      this.workers.push(worker);
    }
  }

  /** Takes no more builds, cancels those it runs, and says it is gone. Its connections stay open. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const a of this.active.values()) a.controller.abort();
    await Promise.all(this.workers.map((w) => w.close()));
    await this.queues.close();
    await this.placement.unregister().catch(() => undefined);
    await this.redis.del(this.keys.alive(this.workerId)).catch(() => undefined);
  }

  /** Says it is alive, and registers again (another worker drops the record of one whose beat expired: a long Redis outage). */
  private async heartbeat(): Promise<void> {
    const sent = performance.now();
    await Promise.all([this.redis.set(this.keys.alive(this.workerId), '1', 'PX', WORKER_ALIVE_TTL_MS), this.placement.register()]);
    this.lastBeat = sent;
  }

  /** Cut off from Redis for too long: the builds are another worker's soon; stopped here, their containers removed. */
  private stopIfCutOff(): void {
    if (performance.now() - this.lastBeat < LOST_AFTER_MS || !this.active.size) return;
    this.log.warn({ builds: [...this.active.keys()], silentMs: Math.round(performance.now() - this.lastBeat) }, 'cut off from Redis: stopping the builds this worker runs');
    for (const a of this.active.values()) this.lose(a);
  }

  private lose(a: ActiveBuild): void {
    a.lost = true;
    a.controller.abort();
  }

  private async process(job: Job<BuildJob>, token: string): Promise<void> {
    await this.slots.take();
    try {
      await this.runJob(job, token);
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      // Not the build's own failure (Redis refused a record): its client is told, rather than left waiting.
      this.log.warn({ build: job.data.buildId, err }, 'build could not be run');
      await appendOutput(this.redis, this.keys, job.data.buildId, { kind: 'error', text: `The build could not be run: ${asStevedoreError(err).message}` }).catch(() => undefined);
    } finally {
      this.slots.give();
    }
  }

  private async runJob(job: Job<BuildJob>, token: string): Promise<void> {
    const o = job.data;
    // A copy left where the build was before it was handed over or queued again: the build is elsewhere.
    if (await this.queues.stale(o.buildId, queueNode(job.queueName))) return;
    // Not for this node (the nodes' labels changed since it was queued): to one that may run it.
    if (!mayRun(this.placement.self, o)) return this.requeue(o);
    const taken = Date.now();
    const a: ActiveBuild = { controller: new AbortController(), lost: false };
    // Active before its claim: this worker's sweep leaves its record alone.
    this.active.set(o.buildId, a);
    const claimed = await this.runs.claim(o.buildId, this.workerId, this.node).catch((err) => {
      this.active.delete(o.buildId);
      throw err;
    });
    const { run, fence, previous } = claimed;
    if (run.attempt > MAX_ATTEMPTS) {
      this.active.delete(o.buildId);
      await this.runs.release(o.buildId, fence);
      await this.queues.ended(o.buildId);
      await appendOutput(this.redis, this.keys, o.buildId, { kind: 'error', text: `The build was given up: the workers running it stopped ${run.attempt - 1} times (the last ${previous?.worker})` });
      return;
    }
    metrics.buildsRunning.set({ node: this.node }, this.active.size);
    if (await this.redis.exists(this.keys.cancelled(o.buildId)).catch(() => 0)) a.controller.abort();
    const buildDir = path.join(this.workDir, o.buildId);
    const log = this.log.child({ build: o.buildId, reqId: o.requestId, attempt: run.attempt });
    const writer = new OutputWriter(this.runs, o.buildId, fence, () => this.lose(a));
    const output = (entry: OutputEntry): Promise<void> => writer.write(entry);
    let outcome = 'failed';
    let keepContext = false;
    try {
      if (previous) await this.failedOver(previous, run, output);
      // A run of this build that stopped on this host left its directory: this run holds the build now.
      await fs.promises.rm(buildDir, { recursive: true, force: true });
      fs.mkdirSync(buildDir, { mode: 0o700 });
      const context = await this.context(o, buildDir, a.controller.signal);
      context.applyDockerignore();
      log.debug({ queuedMs: taken - job.timestamp, contextMs: Date.now() - taken }, 'context ready');
      const store = grpcBuildImageStore(this.store, this.runtime, o.requestId);
      const to = run.attempt === 1 ? await this.handOverTo(o, context, store) : undefined;
      if (to) {
        metrics.handovers.inc({ node: this.node });
        log.info({ to }, "handed to a node that holds FROM's layers");
        keepContext = true;
        outcome = 'moved';
        await this.runs.release(o.buildId, fence);
        await this.queues.add({ ...o, handedTo: to }, to);
        return;
      }
      const buildContainers = new BuildContainers(
        containerNamePrefix(o.buildId, run.attempt),
        grpcBuildRuntime(this.runtime, o.requestId),
        {
          record: async (name) => void (await this.redis.sadd(this.keys.containers(o.buildId), name)),
          forget: async (name) => void (await this.redis.srem(this.keys.containers(o.buildId), name)),
        },
        (text) => output({ kind: 'out', text }),
      );
      const counts = {
        hit: () => metrics.cacheLookups.inc({ node: this.node, result: 'hit' }),
        miss: () => metrics.cacheLookups.inc({ node: this.node, result: 'miss' }),
        waited: () => metrics.sharedStepWaits.inc({ node: this.node }),
      };
      const leases = new StepLeases(this.redis, this.keys);
      const cache = new BuildCache(store, o.nocache, { leases, signal: a.controller.signal, say: (text) => output({ kind: 'out', text }), counts });
      const stepTook = (instruction: string, seconds: number) => metrics.stepDuration.observe({ node: this.node, instruction: metrics.instructionLabel(instruction) }, seconds);
      const builder = new Builder({ ...o, context, workDir: buildDir }, { store, containers: buildContainers, cache, output, stepTook }, a.controller.signal);
      const started = Date.now();
      const image = await builder.run().finally(() => leases.release());
      log.info({ image, tag: o.tag, stepsMs: Date.now() - started }, 'built');
      await output({ kind: 'done', text: image });
      outcome = 'built';
    } catch (err) {
      if (a.lost) {
        // Another run takes it (or BullMQ gives it back once the lock is gone); its claim tells the client.
        keepContext = true;
        outcome = 'moved';
        log.warn('build stopped: another worker takes it');
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      const e = asStevedoreError(err);
      outcome = err instanceof BuildCancelled ? 'cancelled' : 'failed';
      log.info({ err: e.message, cancelled: outcome === 'cancelled' }, 'build failed');
      await output({ kind: 'error', text: e.message, code: err instanceof StepFailed ? err.code : undefined }).catch(() => undefined);
    } finally {
      this.active.delete(o.buildId);
      metrics.buildsRunning.set({ node: this.node }, this.active.size);
      metrics.buildDuration.observe({ node: this.node, outcome }, (Date.now() - taken) / 1000);
      await fs.promises.rm(buildDir, { recursive: true, force: true });
      if (!o.remote && !keepContext) await deleteContextStream(this.redis, this.keys, o.buildId).catch(() => undefined);
      if (!a.lost && outcome !== 'moved') {
        await this.runs.release(o.buildId, fence).catch((err) => log.warn({ err }, 'releasing the build failed (the sweep will)'));
        await this.queues.ended(o.buildId).catch(() => undefined);
      }
    }
  }

  /** A build this node may not run, queued for one that may; ended with an error when none may any more. */
  private async requeue(o: BuildJob): Promise<void> {
    try {
      await this.queues.add({ ...o, handedTo: undefined });
    } catch (err) {
      if (!(err instanceof NoNodeForBuild)) throw err;
      await appendOutput(this.redis, this.keys, o.buildId, { kind: 'error', text: `No node of the cluster that runs builds meets ${askedOf(o)} any more` });
    }
  }

  private async context(o: BuildJob, buildDir: string, signal: AbortSignal): Promise<BuildContext> {
    if (o.remote) return remoteContext(o.remote, buildDir, this.contextMax);
    return this.readers.use((redis) => fetchContext({ redis, keys: this.keys, buildId: o.buildId, store: this.store, requestId: o.requestId, signal }, buildDir, this.contextMax));
  }

  /** The worker or node that ran the build before stopped: the client is told, the count kept. */
  private async failedOver(previous: BuildRun, run: BuildRun, output: (entry: OutputEntry) => Promise<void>): Promise<void> {
    metrics.failovers.inc({ node: this.node });
    const where = (r: BuildRun) => (r.node ? `node ${r.node}` : `worker ${r.worker}`);
    this.log.warn({ previous, run }, 'build taken again after its worker stopped');
    await output({ kind: 'out', text: ` ---> The ${where(previous)} running this build stopped: the build starts again from its first step on ${where(run)}\n` });
  }

  /** Before any step: a node to hand the build to because it holds FROM's layers and this one does not; undefined to build here. */
  private async handOverTo(o: BuildJob, context: BuildContext, store: ReturnType<typeof grpcBuildImageStore>): Promise<string | undefined> {
    const text = context.dockerfile();
    if (!text || !this.node) return undefined;
    const from = parseDockerfile(text)[0];
    if (from?.instruction !== 'FROM') return undefined;
    const base = await store.base(from.args).catch(() => undefined);
    return base && this.placement.betterNode(o, base.id);
  }

  /**
   * Runs whose worker is dead: their containers handed to their node; those
   * the queue gave up (or lost) end with an error. Then the containers
   * handed to this node are removed.
   */
  async sweep(): Promise<void> {
    try {
      for (const [buildId, { run, fence }] of await this.runs.all()) {
        // This worker's own record of a build it does not run is one it failed to release.
        if (this.active.has(buildId)) continue;
        if (run.worker !== this.workerId && (await this.redis.exists(this.keys.alive(run.worker)))) continue;
        const handed = await this.runs.orphan(buildId, fence);
        if (handed) this.log.warn({ build: buildId, worker: run.worker, node: run.node, containers: handed }, "a dead worker's build: its containers handed to their node for removal");
        // A build a queue still holds runs again; one they gave up ends here.
        if (await this.queues.holds(buildId)) continue;
        if (!(await this.runs.release(buildId, fence))) continue;
        await this.queues.ended(buildId);
        fs.rmSync(path.join(this.workDir, buildId), { recursive: true, force: true });
        const times = run.attempt === 1 ? 'once' : `${run.attempt} times`;
        await appendOutput(this.redis, this.keys, buildId, { kind: 'error', text: `The build was given up: the workers running it stopped (${times}, the last ${run.worker}); its intermediate containers are removed` });
        this.log.warn({ build: buildId, worker: run.worker }, 'a build given up after its workers stopped');
      }
      await this.emptyDeadQueues();
      await this.removeOrphans();
    } catch (err) {
      this.log.warn({ err }, 'sweep failed');
    }
  }

  /** The builds in the queues of nodes without a live worker, queued again (each by the sweeper that removed it). */
  private async emptyDeadQueues(): Promise<void> {
    if (!this.membership) return;
    const live = new Set((await liveWorkers(this.redis, this.keys)).map((w) => w.node));
    for (const { name } of await this.membership.members()) {
      if (live.has(name)) continue;
      const queue = this.queues.queue(name);
      for (const job of await queue.getJobs(['wait', 'delayed', 'prioritized', 'paused', 'active'])) {
        // Still locked: its worker may be alive after all.
        if (await this.redis.exists(`${this.keys.bull}:${queue.name}:${job.id}:lock`)) continue;
        if (await this.queues.stale(job.data.buildId, name)) {
          await job.remove().catch(() => undefined);
          continue;
        }
        this.log.warn({ build: job.data.buildId, node: name }, 'a build queued for a node without a live worker: queued again');
        // Queued elsewhere first (the copy left here is stale from then on), then removed here.
        await this.requeue(job.data);
        await job.remove().catch(() => undefined);
      }
    }
  }

  /** Removes the containers of ended runs handed to this node, whatever rm and forcerm said: no client waits for them. */
  private async removeOrphans(): Promise<void> {
    const key = this.keys.orphans(this.node);
    const names = await this.redis.smembers(key);
    if (!names.length) return;
    const runtime = grpcBuildRuntime(this.runtime, 'sweep');
    for (const name of names) {
      await runtime.remove(name).catch((err) => {
        if (asStevedoreError(err).kind !== 'notFound') throw err;
      });
      await this.redis.srem(key, name);
      this.log.info({ container: name }, 'removed an intermediate container of a build that ran on');
    }
  }
}
