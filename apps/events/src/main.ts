import { events } from '@stevedore/contracts';
import { runGrpcService } from '@stevedore/service-kit';
import { EventsModule } from './events.module';
import { EventsRpc } from './events.rpc';

void runGrpcService({
  name: 'events',
  module: EventsModule,
  bindings: (app) => [{ definition: events.EventsService, implementation: app.get(EventsRpc).implementation() }],
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
