// The edge's view of the cluster's nodes: read from Redis at most once a
// second, and again at once when a node joins or leaves (their news on the
// membership channel). The edge keeps nothing else: any edge sees the same.
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ContainerIndex, Membership, type Member } from '@stevedore/cluster';
import type { StevedoreConfig } from '@stevedore/config';
import { connectRedis, type Redis } from '@stevedore/redis';
import { CONFIG } from '../nest-context';

const FRESH_MS = 1000;

@Injectable()
export class ClusterView implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly news: Redis;
  private readonly membership: Membership;
  /** Where each container of the cluster is. */
  readonly index: ContainerIndex;
  private cached?: { at: number; members: Promise<Member[]> };

  constructor(@Inject(CONFIG) config: StevedoreConfig) {
    this.redis = connectRedis(config.redisUrl);
    this.membership = new Membership(this.redis, config.redisPrefix);
    this.index = new ContainerIndex(this.redis, config.redisPrefix);
    this.news = connectRedis(config.redisUrl, { enableAutoPipelining: false });
    this.news.on('message', () => (this.cached = undefined));
    void this.news.subscribe(this.membership.channel).catch(() => undefined);
  }

  /** Every node that joined, up or down, by name; none on a single host. */
  members(): Promise<Member[]> {
    if (!this.cached || Date.now() - this.cached.at > FRESH_MS) {
      const members = this.membership.members();
      this.cached = { at: Date.now(), members };
      // A failed read is not kept.
      members.catch(() => (this.cached = undefined));
    }
    return this.cached.members;
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
    this.news.disconnect();
  }
}
