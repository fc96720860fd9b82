// The build farm's contract between the API edge and the build workers, all
// through Redis so that edges and workers may run on any host:
// - the BullMQ queue the edge adds a job to and the workers take jobs from;
// - the job's context: a Redis stream of the build's own, written while
//   the job is already queued (the rest of a large one in the image
//   store's blob store);
// - the job's output, a Redis stream per build that the worker appends to
//   and the edge reads (and forwards to the client in its version's format);
// - cancellation (the client went away), a pub/sub message to the workers;
// - the records the forcerm promise stands on: which worker runs which build
//   (and whether that worker is alive), and the names of every intermediate
//   container of a build, recorded before the container is created.
import { connectRedis, type Redis } from '@stevedore/redis';
import { entryFields, OUTPUT_TTL_SECONDS, type BuildRuns } from './farm';

export { BuildRuns, hostPlatform, liveWorkers, mayRun, nodeLoads, OUTPUT_TTL_SECONDS, type BuildRun, type Claimed, type WorkerRecord } from './farm';
export { askedOf, BuildQueues, NoNodeForBuild, nodeQueueName, QUEUE_NAME } from './build-queues';

export interface BuildJob {
  buildId: string;
  /** The context archive comes through the build's context stream (see ContextSink); '' when `remote` names the context. */
  remote: string;
  tag: string;
  quiet: boolean;
  nocache: boolean;
  rm: boolean;
  forcerm: boolean;
  /**
   * FROM's pulls use the credentials the API edge holds in the image store
   * under this reference (`X-Registry-Config`; '' when there are none): a
   * job lives in Redis, and credentials never do.
   */
  heldCredentials: string;
  requestId: string;
  /**
   * Swarm classic's constraints the node running the build must meet, as
   * written after `constraint:` (`node==NAME`, `KEY==VALUE` on the node's
   * labels, `!=`; a `~` one is a preference only), from the request's
   * `constraint:` build arguments.
   */
  constraints: string[];
  /** The platform the build asks for (`linux/amd64`), '' for any. */
  platform: string;
  /** Set when a worker handed the build to a node that holds FROM's layers (it is handed once at most). */
  handedTo?: string;
}

/**
 * One entry of a build's output: `out` and `err` are the builder's two
 * streams (err is shown in red), `raw` a JSON progress message of a pull,
 * `error` ends the build with a failure, `done` ends it with success.
 */
export interface OutputEntry {
  kind: 'out' | 'err' | 'raw' | 'error' | 'done';
  text: string;
  /** An `error`'s exit status of the command that failed (a RUN), for `errorDetail.code`. */
  code?: number;
}

/** A worker that has not said it is alive for this long is dead. */
export const WORKER_ALIVE_TTL_MS = 6000;

export class BuildKeys {
  constructor(readonly prefix: string) {}
  /** BullMQ's own prefix for the queue's keys. */
  get bull(): string {
    return `${this.prefix}bull`;
  }
  output(buildId: string): string {
    return `${this.prefix}build:${buildId}:output`;
  }
  context(buildId: string): string {
    return `${this.prefix}build:${buildId}:context`;
  }
  containers(buildId: string): string {
    return `${this.prefix}build:${buildId}:containers`;
  }
  /** Hash: build ID → the run holding it (farm.ts). */
  get running(): string {
    return `${this.prefix}builds:running`;
  }
  /** Hash: worker ID → its node and how many builds it runs at once. */
  get workers(): string {
    return `${this.prefix}build-workers`;
  }
  /** Set: names of intermediate containers the node's workers remove (their run ended elsewhere). */
  orphans(node: string): string {
    return `${this.orphansPrefix}${node}`;
  }
  get orphansPrefix(): string {
    return `${this.prefix}build-orphans:`;
  }
  /** The queue a build was last added to ('' for the shared one): a copy of it in another queue is stale. */
  queued(buildId: string): string {
    return `${this.prefix}build:${buildId}:queue`;
  }
  /** The lease of a step being built (the hash of its parent and config): others wait for its result. */
  step(hash: string): string {
    return `${this.prefix}build-step:${hash}`;
  }
  alive(workerId: string): string {
    return `${this.prefix}build-worker:${workerId}:alive`;
  }
  get cancel(): string {
    return `${this.prefix}builds:cancel`;
  }
  /** Set when a build is cancelled: a worker that takes its job later does not run it. */
  cancelled(buildId: string): string {
    return `${this.prefix}build:${buildId}:cancelled`;
  }
}

/**
 * A Redis connection for BullMQ (a queue or a worker). Without automatic
 * pipelining: BullMQ defines dozens of scripts on its connection, and every
 * automatic batch copied them all (a millisecond of a cached build's time).
 */
export function queueConnection(url: string): Redis {
  return connectRedis(url, { enableAutoPipelining: false });
}


/**
 * How much of a context goes through Redis: a typical context fits (and
 * costs a few Redis round trips instead of two gRPC streams through the
 * image store's disk); a larger one's rest goes to the blob store, so that
 * Redis never holds more than this per build.
 */
export const CONTEXT_INLINE_BYTES = 1024 * 1024;
/** How long a context nobody read stays (its edge died before deleting it). */
const CONTEXT_TTL_SECONDS = 3600;
/** How long a worker waits for the next part of a context before giving up (the edge that received it died). */
const CONTEXT_IDLE_MS = 10 * 60_000;

/**
 * The API edge's side of a build's context stream, written while the job
 * is already queued (a worker reads as it arrives): `d` entries of bytes
 * while they fit in CONTEXT_INLINE_BYTES (`take` answers false for the
 * first chunk that does not: it and the rest go to the blob store), then
 * one `end` entry naming that blob ('' when none), or one `fail` entry.
 */
export class ContextSink {
  private bytes = 0;
  private written = false;
  private full = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: BuildKeys,
    private readonly buildId: string,
  ) {}

  async take(chunk: Buffer): Promise<boolean> {
    if (this.full || this.bytes + chunk.length > CONTEXT_INLINE_BYTES) return !(this.full = true);
    this.bytes += chunk.length;
    await this.add('d', chunk);
    return true;
  }

  /** The context is whole: its rest, if any, is in `blob`. */
  finish(blob: string): Promise<void> {
    return this.add('end', blob);
  }

  /** The context will not be whole (the client went away, the blob store failed). */
  fail(message: string): Promise<void> {
    return this.add('fail', message);
  }

  private async add(field: string, value: Buffer | string): Promise<void> {
    const key = this.keys.context(this.buildId);
    const first = !this.written;
    this.written = true;
    await Promise.all([this.redis.xadd(key, '*', field, value), first ? this.redis.expire(key, CONTEXT_TTL_SECONDS) : undefined]);
  }
}

/**
 * The worker's side: the bytes of a build's context stream as they arrive,
 * then `{ blob }` (where the rest is, '' when nowhere). `redis` is a
 * connection of the reader's own (the reads block). Fails when the edge
 * reports a failure, when `signal` aborts, or after CONTEXT_IDLE_MS without
 * anything new.
 */
export async function* readContextStream(redis: Redis, keys: BuildKeys, buildId: string, signal: AbortSignal): AsyncGenerator<Buffer | { blob: string }> {
  const key = keys.context(buildId);
  let last = '0';
  let heard = Date.now();
  for (;;) {
    if (signal.aborted) throw new Error('the build was cancelled before its context arrived');
    const res = (await redis.xreadBuffer('COUNT', 16, 'BLOCK', 1000, 'STREAMS', key, last)) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
    if (!res) {
      if (Date.now() - heard > CONTEXT_IDLE_MS) throw new Error(`nothing of the context arrived for ${CONTEXT_IDLE_MS / 1000} s`);
      continue;
    }
    heard = Date.now();
    for (const [, entries] of res) {
      for (const [id, fields] of entries) {
        last = id.toString();
        const kind = fields[0].toString();
        if (kind === 'd') yield fields[1];
        else if (kind === 'end') {
          yield { blob: fields[1].toString() };
          return;
        }
        else if (kind === 'fail') throw new Error(fields[1].toString());
      }
    }
  }
}

/** Deletes a build's context stream (the worker when it has the context, the edge after the build). */
export async function deleteContextStream(redis: Redis, keys: BuildKeys, buildId: string): Promise<void> {
  await redis.del(keys.context(buildId));
}

/** Appends entries to a build's output stream, as one stream entry (a `k`/`t` pair each). */
export async function appendOutput(redis: Redis, keys: BuildKeys, buildId: string, entries: OutputEntry | OutputEntry[]): Promise<void> {
  const list = Array.isArray(entries) ? entries : [entries];
  if (!list.length) return;
  const key = keys.output(buildId);
  await redis.xadd(key, '*', ...list.flatMap(entryFields));
  if (list.some((e) => e.kind === 'error' || e.kind === 'done')) await redis.expire(key, OUTPUT_TTL_SECONDS);
}

/**
 * A build's output as the worker writes it: the lines of one turn of the
 * event loop go to Redis together (a build's cached steps make dozens at
 * once), in order; the last line (`error` or `done`) waits until all are
 * stored.
 */
export class OutputWriter {
  private batch: OutputEntry[] = [];
  private sent: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly runs: BuildRuns,
    private readonly buildId: string,
    /** The run's record as stored: nothing is written once another run holds the build. */
    private readonly fence: string,
    /** Called once when a write was refused (another run holds the build, or Redis refused it). */
    private readonly onLost: () => void,
  ) {}

  write(entry: OutputEntry): Promise<void> {
    if (this.batch.push(entry) === 1) setImmediate(() => this.flush());
    return entry.kind === 'error' || entry.kind === 'done' ? this.settled() : Promise.resolve();
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = [];
    this.sent = this.sent
      .then(async () => {
        if (this.failure) return;
        if (!(await this.runs.append(this.buildId, this.fence, batch))) {
          this.failure = new Error('another run holds this build now');
          this.onLost();
        }
      })
      .catch((err) => {
        // Redis refused the write (a failover's READONLY…): this run cannot say what it does; another takes the build.
        if (this.failure) return;
        this.failure = err;
        this.onLost();
      });
  }

  /** Resolves when every line written so far is stored; rejects with the first failure. */
  private async settled(): Promise<void> {
    if (this.batch.length) this.flush();
    await this.sent;
    if (this.failure) throw this.failure;
  }
}

/**
 * Reads a build's output from the start until it ends (`error` or `done`),
 * waiting for new entries; yields them as they were stored, in batches.
 * `redis` is a connection of the reader's own (the reads block). Stops
 * early when `signal` aborts.
 */
export async function* readOutput(redis: Redis, keys: BuildKeys, buildId: string, signal: AbortSignal): AsyncGenerator<OutputEntry[]> {
  const key = keys.output(buildId);
  let last = '0';
  while (!signal.aborted) {
    const res = (await redis.xread('COUNT', 256, 'BLOCK', 1000, 'STREAMS', key, last)) as Array<[string, Array<[string, string[]]>]> | null;
    for (const [, stored] of res ?? []) {
      const batch: OutputEntry[] = [];
      let ended = false;
      for (const [id, fields] of stored) {
        last = id;
        for (let i = 0; i + 1 < fields.length && !ended; i += 2) {
          const [field, value] = [fields[i], fields[i + 1]];
          if (field === 'k') batch.push({ kind: value as OutputEntry['kind'], text: '' });
          else if (field === 't' && batch.length) batch[batch.length - 1].text = value;
          else if (field === 'c' && batch.length) batch[batch.length - 1].code = Number(value);
          // An entry ends the output once its fields are read (its code comes after its text).
          const next = fields[i + 2];
          const current = batch[batch.length - 1];
          if (current && (next === undefined || next === 'k') && (current.kind === 'error' || current.kind === 'done')) ended = true;
        }
        if (ended) break;
      }
      if (batch.length) yield batch;
      if (ended) return;
    }
  }
}

/** Asks the workers to stop a build (its client went away). */
export async function cancelBuild(redis: Redis, keys: BuildKeys, buildId: string): Promise<void> {
  await redis.set(keys.cancelled(buildId), '1', 'EX', OUTPUT_TTL_SECONDS);
  await redis.publish(keys.cancel, buildId);
}
