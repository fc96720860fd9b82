import { events } from '@stevedore/contracts';
import { grpcServiceStart } from '@stevedore/service-kit';
import { EventFeed } from './event-feed';
import { EventsRpc } from './events.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'events',
  async compose({ config, log }) {
    const feed = new EventFeed(config, log);
    await feed.start();
    return {
      bindings: [{ definition: events.EventsService, implementation: new EventsRpc(feed, log).implementation() }],
      stop: () => feed.stop(),
    };
  },
});
