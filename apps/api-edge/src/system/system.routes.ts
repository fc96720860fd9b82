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
      // Pings are logged at debug: every CLI command and health probe sends one (the line cost a tenth of the answer).
      route('GET', '/_ping', h.ping, { since: '1.11', logLevel: 'debug' }),
      route('HEAD', '/_ping', h.ping, { since: '1.11', logLevel: 'debug', addedFor: 'version negotiation of today\'s clients (engine 19.03)' }),
      route('GET', '/version', h.version, { since: '1.0' }),
      route('GET', '/info', h.info, { since: '1.0' }),
      route('POST', '/auth', h.auth, { since: '1.0' }),
    ];
  }
}
