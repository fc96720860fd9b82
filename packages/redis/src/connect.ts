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
