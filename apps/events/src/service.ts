import { events } from '@stevedore/contracts';
import { connectRedis, EventLog } from '@stevedore/redis';
import { grpcServiceStart, serve } from '@stevedore/service-kit';
import { EventFeed } from './event-feed';
import { EventsRpc } from './events.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'events',
  async compose({ config, log }) {
    const redis = connectRedis(config.redisUrl);
    // A connection blocked in XREAD must not hold other commands back behind it.
    const tail = connectRedis(config.redisUrl, { enableAutoPipelining: false });
    const feed = new EventFeed({ log: new EventLog(redis, config.redisPrefix, config.events), redis, tail }, log);
    await feed.start();
    return {
      bindings: [serve(events.EventsService, log, new EventsRpc(feed).handlers())],
      async stop() {
        await feed.stop();
        await redis.quit().catch(() => undefined);
      },
    };
  },
});
