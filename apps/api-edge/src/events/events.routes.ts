import { Injectable } from '@nestjs/common';
import { route, type RouteTable } from '../http/route';
import { EventsHandler } from './events.handler';

@Injectable()
export class EventsRoutes implements RouteTable {
  readonly domain = 'events';

  constructor(private readonly h: EventsHandler) {}

  routes() {
    return [route('GET', '/events', this.h.events, { since: '1.3' })];
  }
}
