import { events } from '@stevedore/contracts';
import { startGrpcService } from '@stevedore/service-kit';
import { EventsModule } from './events.module';
import { EventsRpc } from './events.rpc';

startGrpcService({
  name: 'events',
  module: EventsModule,
  bindings: (app) => [{ definition: events.EventsService, implementation: app.get(EventsRpc).implementation() }],
});
