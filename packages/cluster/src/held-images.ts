// Which images' layers each node holds: a node's container runtime adds an
// image to its set once every layer of it is in the node's layer cache (a
// node never drops a layer it fetched, so the set only grows). The build
// farm reads it to give a build to a node that holds FROM's layers.
import type { Redis } from '@stevedore/redis';

export class HeldImages {
  /** Added already by this process (a set only grows: once is enough). */
  private readonly added = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(node: string): string {
    return `${this.prefix}node:${node}:images`;
  }

  /** The node holds every layer of the image. */
  async add(node: string, imageId: string): Promise<void> {
    if (this.added.has(`${node} ${imageId}`)) return;
    await this.redis.sadd(this.key(node), imageId);
    this.added.add(`${node} ${imageId}`);
  }

  /** Those of `nodes` that hold the image's layers. */
  async holders(imageId: string, nodes: string[]): Promise<string[]> {
    const held = await Promise.all(nodes.map((n) => this.redis.sismember(this.key(n), imageId)));
    return nodes.filter((_, i) => held[i] === 1);
  }
}
