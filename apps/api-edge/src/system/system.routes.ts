import { Injectable } from '@nestjs/common';
import { route, type RouteTable } from '../http/route';
import { SystemHandlers } from './system.handlers';

@Injectable()
export class SystemRoutes implements RouteTable {
  readonly domain = 'system';

  constructor(private readonly h: SystemHandlers) {}

  routes() {
    const h = this.h;
    return [
      route('GET', '/_ping', h.ping, { since: '1.11' }),
      route('HEAD', '/_ping', h.ping, { since: '1.11', addedFor: 'version negotiation of today\'s clients (engine 19.03)' }),
      route('GET', '/version', h.version, { since: '1.0' }),
      route('GET', '/info', h.info, { since: '1.0' }),
      route('POST', '/auth', h.auth, { since: '1.0' }),
    ];
  }
}
