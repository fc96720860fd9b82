// Where each container of a cluster is, in Redis: its name (unique across the
// cluster: claimed before the container is made), the node it is on, and per
// node the containers that count for placement (running, or created and not
// yet started). The node's runtime writes it; the edges read it to route a
// request and to place a container. A runtime that restarts rewrites its
// node's part from its own records, so a change lost with a crash is righted.
import type { Redis } from '@stevedore/redis';

/** Claims a name for a container on a node: the holder's ID when another container has it. */
const CLAIM = `
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder and holder ~= ARGV[2] then return holder end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. ' ' .. ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return false
`;

/** Forgets a container (and its name, if it still holds it). */
const RELEASE = `
local entry = redis.call('HGET', KEYS[2], ARGV[1])
if entry then
  local name = string.sub(entry, string.find(entry, ' ') + 1)
  if redis.call('HGET', KEYS[1], name) == ARGV[1] then redis.call('HDEL', KEYS[1], name) end
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
`;

/** What a cluster shows of a container whose node is down (its last word on it). */
export interface ContainerSummary {
  name: string;
  image: string;
  imageId: string;
  command: string[];
  created: string;
}

/**
 * A reference (a full ID, a name or a unique ID prefix, in the order Docker
 * resolves them) to {id, node}; nil when none; 'ambiguous' for a prefix of several.
 */
const LOCATE = `
local ref = ARGV[1]
local name = ref
if string.sub(name, 1, 1) ~= '/' then name = '/' .. name end
local id = nil
if redis.call('HEXISTS', KEYS[2], ref) == 1 then id = ref end
if not id then id = redis.call('HGET', KEYS[1], name) end
if not id and string.match(ref, '^[0-9a-f]+$') then
  local found = {}
  local count = 0
  local cursor = '0'
  repeat
    local r = redis.call('HSCAN', KEYS[2], cursor, 'MATCH', ref .. '*', 'COUNT', 1000)
    cursor = r[1]
    for i = 1, #r[2], 2 do
      if not found[r[2][i]] then
        found[r[2][i]] = true
        count = count + 1
        id = r[2][i]
      end
    end
  until cursor == '0'
  if count > 1 then return 'ambiguous' end
end
if not id then return false end
local entry = redis.call('HGET', KEYS[2], id)
if not entry then return false end
return {id, string.sub(entry, 1, string.find(entry, ' ') - 1)}
`;

export interface Located {
  id: string;
  node: string;
}

export class ContainerIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private get names(): string {
    return `${this.prefix}container-names`;
  }

  /** Container ID → "node name". */
  private get ids(): string {
    return `${this.prefix}container-nodes`;
  }

  private get info(): string {
    return `${this.prefix}container-info`;
  }

  private active(node: string): string {
    return `${this.prefix}node:${node}:active`;
  }

  /** Claims `name` (with its '/') for container `id` on `node`; resolves with the holder's ID when another container has it. */
  async claim(name: string, id: string, node: string): Promise<string | undefined> {
    const holder = await this.redis.eval(CLAIM, 3, this.names, this.ids, this.active(node), name, id, node);
    return holder ? String(holder) : undefined;
  }

  async release(id: string, node: string): Promise<void> {
    await this.redis.eval(RELEASE, 4, this.names, this.ids, this.active(node), this.info, id);
  }

  /** What the cluster shows of the container should its node go down. */
  async describe(id: string, summary: ContainerSummary): Promise<void> {
    await this.redis.hset(this.info, id, JSON.stringify(summary));
  }

  /** A node's containers as the index knows them: whether each counts as active, and its summary (if it has one). */
  async containersOn(node: string): Promise<Array<{ id: string; active: boolean; summary?: ContainerSummary }>> {
    const ids = Object.entries(await this.redis.hgetall(this.ids)).filter(([, entry]) => entry.startsWith(`${node} `)).map(([id]) => id);
    if (!ids.length) return [];
    const [summaries, active] = await Promise.all([this.redis.hmget(this.info, ...ids), this.redis.smembers(this.active(node))]);
    const on = new Set(active);
    return ids.map((id, i) => ({ id, active: on.has(id), summary: summaries[i] ? (JSON.parse(summaries[i]!) as ContainerSummary) : undefined }));
  }

  /** A container that runs, or will (created): it counts for placement. Stopped, it does not. */
  async setActive(id: string, node: string, active: boolean): Promise<void> {
    if (active) await this.redis.sadd(this.active(node), id);
    else await this.redis.srem(this.active(node), id);
  }

  /** The node a container is on; undefined when the cluster has none by that reference. */
  async locate(ref: string): Promise<Located | 'ambiguous' | undefined> {
    const r = await this.redis.eval(LOCATE, 2, this.names, this.ids, ref);
    if (r === 'ambiguous') return 'ambiguous';
    if (!Array.isArray(r)) return undefined;
    return { id: String(r[0]), node: String(r[1]) };
  }

  /** Per node, how many containers count for placement. */
  async activeCounts(nodes: string[]): Promise<Map<string, number>> {
    const pipeline = this.redis.pipeline();
    for (const n of nodes) pipeline.scard(this.active(n));
    const results = (await pipeline.exec()) ?? [];
    return new Map(nodes.map((n, i) => [n, Number(results[i]?.[1] ?? 0)]));
  }

  /** Every name in the cluster with its container's node (for affinities by name). */
  async namesByNode(): Promise<Array<{ name: string; id: string; node: string }>> {
    const entries = await this.redis.hgetall(this.ids);
    return Object.entries(entries).map(([id, entry]) => {
      const space = entry.indexOf(' ');
      return { id, node: entry.slice(0, space), name: entry.slice(space + 1) };
    });
  }

  /**
   * A node's part rewritten from its runtime's records: its containers (name,
   * whether they count), nothing else. Returns the names another container
   * held meanwhile (left to it).
   */
  async rewriteNode(node: string, containers: Array<{ id: string; name: string; active: boolean; summary: ContainerSummary }>): Promise<string[]> {
    const known = new Set(containers.map((c) => c.id));
    const listed = await this.redis.smembers(this.active(node));
    const mine = Object.entries(await this.redis.hgetall(this.ids)).filter(([, entry]) => entry.startsWith(`${node} `)).map(([id]) => id);
    for (const id of new Set([...listed, ...mine])) if (!known.has(id)) await this.release(id, node);
    const lost: string[] = [];
    for (const c of containers) {
      if (await this.claim(c.name, c.id, node)) lost.push(c.name);
      else {
        await this.setActive(c.id, node, c.active);
        await this.describe(c.id, c.summary);
      }
    }
    return lost;
  }
}
