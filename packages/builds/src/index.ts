// The build farm's contract between the API edge and the build workers, all
// through Redis so that edges and workers may run on any host:
// - the BullMQ queue the edge adds a job to and the workers take jobs from;
// - the job's output, a Redis stream per build that the worker appends to
//   and the edge reads (and forwards to the client in its version's format);
// - cancellation (the client went away), a pub/sub message to the workers;
// - the records the forcerm promise stands on: which worker runs which build
//   (and whether that worker is alive), and the names of every intermediate
//   container of a build, recorded before the container is created.
import { Queue } from 'bullmq';
import type { images } from '@stevedore/contracts';
import type { Redis } from '@stevedore/redis';

export interface BuildJob {
  buildId: string;
  /** The context archive, stored in the image store's blob store; '' when `remote` names the context. */
  contextBlob: string;
  remote: string;
  tag: string;
  quiet: boolean;
  nocache: boolean;
  rm: boolean;
  forcerm: boolean;
  /** `X-Registry-Config`, decoded: credentials by registry ('' for any), for FROM's pulls. */
  registryConfig: Record<string, images.AuthConfig>;
  requestId: string;
}

/**
 * One entry of a build's output: `out` and `err` are the builder's two
 * streams (err is shown in red), `raw` a JSON progress message of a pull,
 * `error` ends the build with a failure, `done` ends it with success.
 */
export interface OutputEntry {
  kind: 'out' | 'err' | 'raw' | 'error' | 'done';
  text: string;
}

export const QUEUE_NAME = 'builds';
/** How long a build's output stays readable after it ended. */
const OUTPUT_TTL_SECONDS = 3600;
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
  containers(buildId: string): string {
    return `${this.prefix}build:${buildId}:containers`;
  }
  /** Hash: build ID → the worker running it. */
  get running(): string {
    return `${this.prefix}builds:running`;
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

export function buildQueue(redis: Redis, keys: BuildKeys): Queue<BuildJob> {
  return new Queue<BuildJob>(QUEUE_NAME, { connection: redis, prefix: keys.bull });
}

/** Appends to a build's output stream. */
export async function appendOutput(redis: Redis, keys: BuildKeys, buildId: string, entry: OutputEntry): Promise<void> {
  const key = keys.output(buildId);
  await redis.xadd(key, '*', 'k', entry.kind, 't', entry.text);
  if (entry.kind === 'error' || entry.kind === 'done') await redis.expire(key, OUTPUT_TTL_SECONDS);
}

/**
 * Reads a build's output from the start until it ends (`error` or `done`),
 * waiting for new entries. `redis` is a connection of the reader's own (the
 * reads block). Stops early when `signal` aborts.
 */
export async function* readOutput(redis: Redis, keys: BuildKeys, buildId: string, signal: AbortSignal): AsyncGenerator<OutputEntry> {
  const key = keys.output(buildId);
  let last = '0';
  while (!signal.aborted) {
    const res = (await redis.xread('COUNT', 256, 'BLOCK', 1000, 'STREAMS', key, last)) as Array<[string, Array<[string, string[]]>]> | null;
    for (const [, entries] of res ?? []) {
      for (const [id, fields] of entries) {
        last = id;
        const entry: OutputEntry = { kind: 'out', text: '' };
        for (let i = 0; i < fields.length; i += 2) {
          if (fields[i] === 'k') entry.kind = fields[i + 1] as OutputEntry['kind'];
          else if (fields[i] === 't') entry.text = fields[i + 1];
        }
        yield entry;
        if (entry.kind === 'error' || entry.kind === 'done') return;
      }
    }
  }
}

/** Asks the workers to stop a build (its client went away). */
export async function cancelBuild(redis: Redis, keys: BuildKeys, buildId: string): Promise<void> {
  await redis.set(keys.cancelled(buildId), '1', 'EX', OUTPUT_TTL_SECONDS);
  await redis.publish(keys.cancel, buildId);
}
