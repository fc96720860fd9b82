import { Module } from '@nestjs/common';
import { EventsHandler } from './events.handler';
import { EventsRoutes } from './events.routes';

@Module({ providers: [EventsHandler, EventsRoutes], exports: [EventsRoutes] })
export class EventsModule {}
