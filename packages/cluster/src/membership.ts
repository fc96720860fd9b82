// Membership: the nodes of a cluster, as they registered in Redis, and
// whether each is up. A node's container runtime joins (its record in the
// hash `<prefix>nodes`) and beats every HEARTBEAT_MS by renewing
// `<prefix>node:<name>:alive`, which expires ALIVE_MS after the last beat:
// a node whose processes died, or whose link went, is down once it has.
// No state is kept anywhere else, so any number of edges read the same view.
import type { Redis } from '@stevedore/redis';

export const HEARTBEAT_MS = 1000;
export const ALIVE_MS = 5000;

export interface NodeRecord {
  name: string;
  /** The address other hosts reach the node at (its published ports are on it). */
  address: string;
  /** The gRPC address of its container runtime. */
  runtime: string;
  cpus: number;
  memoryBytes: number;
  labels: Record<string, string>;
  /** RFC 3339: when it last joined. */
  joinedAt: string;
}

export interface NodeCounts {
  containers: number;
  running: number;
  paused: number;
}

export interface Member extends NodeRecord {
  up: boolean;
  /** As of its last beat (zero for a node that is down). */
  counts: NodeCounts;
  /** When its last beat was sent (RFC 3339), '' when it is down. */
  beatAt: string;
}

interface Beat extends NodeCounts {
  address: string;
  at: string;
}

/** Joins unless a live node already holds the name from another address; then the record, the first beat, the news. */
const JOIN = `
local alive = redis.call('GET', KEYS[2])
if alive then
  local holder = cjson.decode(alive).address
  if holder ~= ARGV[4] then return holder end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[5])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return false
`;

export class Membership {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly aliveMs = ALIVE_MS,
  ) {}

  /** The hash of records, which is also the channel news of a join or a leave goes to. */
  get channel(): string {
    return `${this.prefix}nodes`;
  }

  private aliveKey(name: string): string {
    return `${this.prefix}node:${name}:alive`;
  }

  /** Registers the node and sends its first beat; refused while a live node of that name is reached at another address. */
  async join(record: NodeRecord, counts: NodeCounts): Promise<void> {
    const beat: Beat = { ...counts, address: record.address, at: new Date().toISOString() };
    const holder = await this.redis.eval(JOIN, 2, this.channel, this.aliveKey(record.name), record.name, JSON.stringify(record), JSON.stringify(beat), record.address, String(this.aliveMs));
    if (holder) throw new Error(`node name ${record.name} is taken by a live node at ${String(holder)}`);
  }

  async beat(record: NodeRecord, counts: NodeCounts): Promise<void> {
    const beat: Beat = { ...counts, address: record.address, at: new Date().toISOString() };
    await this.redis.set(this.aliveKey(record.name), JSON.stringify(beat), 'PX', this.aliveMs);
  }

  /** A node that stops on purpose is down at once (its record stays: its containers are still its own). */
  async leave(name: string): Promise<void> {
    await this.redis.del(this.aliveKey(name));
    await this.redis.publish(this.channel, name);
  }

  /** Every node that ever joined, by name, with whether it is up now. */
  async members(): Promise<Member[]> {
    const records = Object.values(await this.redis.hgetall(this.channel)).map((v) => JSON.parse(v) as NodeRecord);
    if (!records.length) return [];
    const beats = await this.redis.mget(records.map((r) => this.aliveKey(r.name)));
    return records
      .map((r, i): Member => {
        const beat = beats[i] ? (JSON.parse(beats[i]!) as Beat) : undefined;
        // A beat from another address belongs to a node that took the name since this record was read.
        const up = beat !== undefined && beat.address === r.address;
        return { ...r, up, counts: up ? { containers: beat.containers, running: beat.running, paused: beat.paused } : { containers: 0, running: 0, paused: 0 }, beatAt: up ? beat.at : '' };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
