import { Module } from '@nestjs/common';
import { serviceProviders } from '@stevedore/service-kit';
import { EventFeed } from './event-feed';
import { EventsRpc } from './events.rpc';

@Module({ providers: [...serviceProviders('events'), EventFeed, EventsRpc] })
export class EventsModule {}
