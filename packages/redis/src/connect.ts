import Redis, { type RedisOptions } from 'ioredis';

/**
 * A Redis connection from a URL: redis://, rediss:// or unix:///path (the
 * private Redis of `stevedore up` listens on a unix socket in the data root).
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableAutoPipelining: true, ...options };
  if (url.startsWith('unix://')) return new Redis({ ...base, path: url.slice('unix://'.length) });
  return new Redis(url, base);
}

/**
 * Connections for blocking reads (a connection blocked in XREAD serves no
 * other command), kept for the next reader instead of connecting each time.
 */
export class BlockingConnections {
  private readonly idle: Redis[] = [];

  constructor(
    private readonly url: string,
    private readonly keep = 16,
  ) {}

  /** Runs `fn` with a connection of its own; the connection is kept when `fn` resolved (no read left in flight). */
  async use<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = this.idle.pop() ?? connectRedis(this.url);
    let done = false;
    try {
      const value = await fn(redis);
      done = true;
      return value;
    } finally {
      if (done && redis.status === 'ready' && this.idle.length < this.keep) this.idle.push(redis);
      else redis.disconnect();
    }
  }

  close(): void {
    for (const r of this.idle.splice(0)) r.disconnect();
  }
}
