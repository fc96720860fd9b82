import { events } from '@stevedore/contracts';
import { grpcServiceStart } from '@stevedore/service-kit';
import { EventsModule } from './events.module';
import { EventsRpc } from './events.rpc';

/** Starts the service (its own process, or the supervisor's with STEVEDORE_PROCESSES=one). */
export const start = grpcServiceStart({
  name: 'events',
  module: EventsModule,
  bindings: (app) => [{ definition: events.EventsService, implementation: app.get(EventsRpc).implementation() }],
});
