// Which images' layers each node holds: a node's container runtime adds an
// image to its sorted set (scored by when it last used it) once every layer
// of it is in the node's layer cache. The build farm reads it to give a
// build to a node that holds FROM's layers. Only a hint: images unused for
// KEPT_MS are dropped from the set (the layers stay on the node, which never
// drops a layer it fetched).
import type { Redis } from '@stevedore/redis';

/** How long an image stays in a node's set after its last use. */
const KEPT_MS = 30 * 24 * 3600_000;
/** How often this process says again that it uses an image (its score renewed). */
const RENEW_MS = 3600_000;
/** Images remembered by this process (beyond, it forgets and says them again). */
const REMEMBERED = 10_000;

export class HeldImages {
  /** When this process last said so, by `node image`. */
  private readonly said = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(node: string): string {
    return `${this.prefix}node:${node}:images`;
  }

  /** The node holds every layer of the image (and used it now). */
  async add(node: string, imageId: string): Promise<void> {
    const now = Date.now();
    const id = `${node} ${imageId}`;
    if (now - (this.said.get(id) ?? 0) < RENEW_MS) return;
    if (this.said.size >= REMEMBERED) this.said.clear();
    await this.redis.zadd(this.key(node), now, imageId);
    if (!this.said.size) await this.redis.zremrangebyscore(this.key(node), '-inf', now - KEPT_MS);
    this.said.set(id, now);
  }

  /** Those of `nodes` that hold the image's layers. */
  async holders(imageId: string, nodes: string[]): Promise<string[]> {
    const held = await Promise.all(nodes.map((n) => this.redis.zscore(this.key(n), imageId)));
    return nodes.filter((_, i) => held[i] !== null);
  }
}
