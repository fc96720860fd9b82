// The records that let builds move between workers and nodes without ever
// running twice at once or leaving a container behind:
// - `running`: build ID → the run that holds it ({ worker, node, attempt });
//   a new run claims it with CLAIM, which hands the previous run's
//   containers to that run's node (`orphans`) and answers with that run;
// - a run's output is fenced: an entry is stored only while the record
//   still names that run (a worker cut off from Redis that comes back late
//   writes nothing into the run that replaced it);
// - `workers`: each worker's node and how many builds it runs at once (a
//   node's free build slots, for handing a build to another node);
// - `orphans(node)`: names of intermediate containers that the node's
//   workers remove as soon as they can (their run ended elsewhere).
import { meetsConstraints, takeFilters } from '@stevedore/cluster';
import type { Redis } from '@stevedore/redis';
import type { BuildJob, BuildKeys, OutputEntry } from './index';

/** One run of a build: the worker, its node ('' on a single host), and which attempt it is (1 for the first). */
export interface BuildRun {
  worker: string;
  node: string;
  attempt: number;
}

/** An output entry's fields in a stream entry: `k` kind, `t` text, `c` code when there is one. */
export function entryFields(e: OutputEntry): string[] {
  return e.code === undefined ? ['k', e.kind, 't', e.text] : ['k', e.kind, 't', e.text, 'c', String(e.code)];
}

/** How long a build's output stays readable after it ended. */
export const OUTPUT_TTL_SECONDS = 3600;

/**
 * KEYS: running, containers(build). ARGV: build ID, the new run's record
 * (its attempt is filled here), the orphans key prefix.
 * Answers the previous record, or false.
 */
const CLAIM = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local run = cjson.decode(ARGV[2])
run.attempt = 1
if prev then
  local p = cjson.decode(prev)
  run.attempt = p.attempt + 1
  local names = redis.call('SMEMBERS', KEYS[2])
  if #names > 0 then redis.call('SADD', ARGV[3] .. p.node, unpack(names)) end
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(run))
return { prev or false, cjson.encode(run) }
`;

/** KEYS: running, containers(build). ARGV: build ID, orphans key prefix, the run's record. Hands the containers of a run whose worker is gone to its node; the record stays. */
const ORPHAN = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev ~= ARGV[3] then return 0 end
local names = redis.call('SMEMBERS', KEYS[2])
if #names > 0 then redis.call('SADD', ARGV[2] .. cjson.decode(prev).node, unpack(names)) end
redis.call('DEL', KEYS[2])
return #names
`;

/** KEYS: running, output. ARGV: build ID, the run's record as stored ('' for no fence), 1 when the entries end the build, then k/t fields. */
const APPEND = `
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
if ARGV[3] == '1' then redis.call('EXPIRE', KEYS[2], ${OUTPUT_TTL_SECONDS}) end
return 1
`;

/**
 * KEYS: running, containers(build). ARGV: build ID, the run's record as
 * stored, orphans key prefix. Deletes it only while it is that run's; the
 * names of containers its run could not remove go to its node's orphans.
 */
const RELEASE = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev ~= ARGV[2] then return 0 end
local names = redis.call('SMEMBERS', KEYS[2])
if #names > 0 then redis.call('SADD', ARGV[3] .. cjson.decode(prev).node, unpack(names)) end
redis.call('DEL', KEYS[2])
return redis.call('HDEL', KEYS[1], ARGV[1])
`;

/** Entries appended by one call (Lua's unpack has a limit of a few thousand values). */
const APPEND_BATCH = 256;

/** The run that took a build, and the one before it if a worker had run it already. */
export interface Claimed {
  run: BuildRun;
  /** The record as stored: the fence of the run's output. */
  fence: string;
  previous?: BuildRun;
}

export class BuildRuns {
  constructor(
    private readonly redis: Redis,
    private readonly keys: BuildKeys,
  ) {}

  /** Takes a build for `worker` on `node`; a previous run's containers go to its node's orphans. */
  async claim(buildId: string, worker: string, node: string): Promise<Claimed> {
    const [prev, fence] = (await this.redis.eval(CLAIM, 2, this.keys.running, this.keys.containers(buildId), buildId, JSON.stringify({ worker, node, attempt: 0 }), this.keys.orphansPrefix)) as [string | null, string];
    return { run: JSON.parse(fence) as BuildRun, fence, previous: prev ? (JSON.parse(prev) as BuildRun) : undefined };
  }

  /** Ends a run's hold on its build (containers it left go to its node's orphans); false when another run holds it now (or none). */
  async release(buildId: string, fence: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 2, this.keys.running, this.keys.containers(buildId), buildId, fence, this.keys.orphansPrefix)) === 1;
  }

  /** Every run held, by build ID. */
  async all(): Promise<Map<string, { run: BuildRun; fence: string }>> {
    const out = new Map<string, { run: BuildRun; fence: string }>();
    for (const [id, fence] of Object.entries(await this.redis.hgetall(this.keys.running))) {
      try {
        out.set(id, { run: JSON.parse(fence) as BuildRun, fence });
      } catch {
        // not a record of this version: left to the sweep that understands it
      }
    }
    return out;
  }

  /** The containers of a run whose worker is gone, handed to its node (while `fence` still holds the build); how many. */
  async orphan(buildId: string, fence: string): Promise<number> {
    return Number(await this.redis.eval(ORPHAN, 2, this.keys.running, this.keys.containers(buildId), buildId, this.keys.orphansPrefix, fence));
  }

  /** Appends entries to the build's output while `fence` is still its run ('' for none); false when it is not. */
  async append(buildId: string, fence: string, entries: OutputEntry[]): Promise<boolean> {
    for (let at = 0; at < entries.length; at += APPEND_BATCH) {
      const part = entries.slice(at, at + APPEND_BATCH);
      const ends = part.some((e) => e.kind === 'error' || e.kind === 'done');
      const stored = await this.redis.eval(APPEND, 2, this.keys.running, this.keys.output(buildId), buildId, fence, ends ? '1' : '0', ...part.flatMap(entryFields));
      if (stored !== 1) return false;
    }
    return true;
  }
}

/** What a worker registers about itself (in the hash `workers`). */
export interface WorkerRecord {
  worker: string;
  /** '' on a single host. */
  node: string;
  concurrency: number;
  labels: Record<string, string>;
  /** `linux/amd64`. */
  platform: string;
}

const ARCHES: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };

/** This host's platform as builds name it. */
export function hostPlatform(): string {
  return `linux/${ARCHES[process.arch] ?? process.arch}`;
}

/** Whether a platform a build asks for (`linux`, `linux/amd64`, `linux/arm64/v8`) is `platform` (OS and architecture). */
function samePlatform(asked: string, platform: string): boolean {
  const [os, arch] = asked.toLowerCase().split('/');
  const [hostOs, hostArch] = platform.split('/');
  return os === hostOs && (!arch || arch === hostArch);
}

/** Whether a worker like `w` may run the build: its node meets the build's constraints, its platform the one asked for. */
export function mayRun(w: Pick<WorkerRecord, 'node' | 'labels' | 'platform'>, job: Pick<BuildJob, 'constraints' | 'platform'>): boolean {
  if (job.platform && !samePlatform(job.platform, w.platform)) return false;
  return meetsConstraints({ name: w.node, labels: w.labels }, takeFilters(job.constraints.map((c) => `constraint:${c}`)).filters);
}

/** The workers alive now (the records of dead ones are dropped). */
export async function liveWorkers(redis: Redis, keys: BuildKeys): Promise<WorkerRecord[]> {
  const records = Object.values(await redis.hgetall(keys.workers)).map((r) => JSON.parse(r) as WorkerRecord);
  const alive = await Promise.all(records.map((r) => redis.exists(keys.alive(r.worker))));
  const dead = records.filter((_, i) => !alive[i]).map((r) => r.worker);
  if (dead.length) await redis.hdel(keys.workers, ...dead);
  return records.filter((_, i) => alive[i]);
}

/** Per node, the build slots of its live workers that pass `filter` and the builds it runs. */
export async function nodeLoads(redis: Redis, keys: BuildKeys, filter: (w: WorkerRecord) => boolean = () => true): Promise<Map<string, { slots: number; running: number }>> {
  const loads = new Map<string, { slots: number; running: number }>();
  for (const w of await liveWorkers(redis, keys)) {
    if (!filter(w)) continue;
    const load = loads.get(w.node) ?? { slots: 0, running: 0 };
    load.slots += w.concurrency;
    loads.set(w.node, load);
  }
  for (const { run } of (await new BuildRuns(redis, keys).all()).values()) {
    const load = loads.get(run.node);
    if (load) load.running++;
  }
  return loads;
}
