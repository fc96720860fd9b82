import { Injectable } from '@nestjs/common';
import { route, type RouteTable } from '../http/route';
import { ExecHandlers } from './exec.handlers';

/** docker exec: served at every version, with the shapes of the engines that documented it (API 1.15 and later). */
@Injectable()
export class ExecRoutes implements RouteTable {
  readonly domain = 'exec';

  constructor(private readonly h: ExecHandlers) {}

  routes() {
    const h = this.h;
    const addedFor = 'docker exec of today\'s CLI';
    return [
      route('POST', '/containers/{id}/exec', h.create, { since: '1.15', addedFor }),
      route('POST', '/exec/{id}/start', h.start, { since: '1.15', addedFor, shapes: 'G10: multiplexed frames without a TTY from v1.6, raw with one' }),
      route('POST', '/exec/{id}/resize', h.resize, { since: '1.15', addedFor }),
      route('GET', '/exec/{id}/json', h.inspect, { since: '1.16', addedFor }),
    ];
  }
}
