import { Injectable } from '@nestjs/common';
import { route, type RouteTable } from '../http/route';
import { ContainersHandlers } from './containers.handlers';

@Injectable()
export class ContainersRoutes implements RouteTable {
  readonly domain = 'containers';

  constructor(private readonly h: ContainersHandlers) {}

  routes() {
    const h = this.h;
    return [
      route('GET', '/containers/json', h.list, { since: '1.0', shapes: 'G9: `Ports` a legacy string below v1.5, a list from v1.5' }),
      route('GET', '/containers/ps', h.list, { since: '1.0', shapes: 'G9, as /containers/json' }),
      route('POST', '/containers/create', h.create, { since: '1.0' }),
      route('GET', '/containers/{id}/json', h.inspect, { since: '1.0', shapes: 'G13: the stored structure (`ID`, no newline) below v1.12; sorted CamelCase with `Id` from v1.12' }),
      route('GET', '/containers/{id}/logs', h.logs, { since: '1.11', shapes: 'G10: raw below v1.6 or with a TTY; multiplexed frames from v1.6' }),
      route('POST', '/containers/{id}/resize', h.resize, { since: '1.0' }),
      route('POST', '/containers/{id}/start', h.start, { since: '1.0' }),
      route('POST', '/containers/{id}/stop', h.stop, { since: '1.0' }),
      route('POST', '/containers/{id}/kill', h.kill, { since: '1.0' }),
      route('POST', '/containers/{id}/restart', h.restart, { since: '1.0' }),
      route('POST', '/containers/{id}/pause', h.pause, { since: '1.12', addedFor: 'served by Docker 1.0, documented from v1.13' }),
      route('POST', '/containers/{id}/unpause', h.unpause, { since: '1.12', addedFor: 'served by Docker 1.0, documented from v1.13' }),
      route('GET', '/containers/{id}/stats', h.stats, { since: '1.17', addedFor: 'docker stats of today\'s CLI' }),
      route('GET', '/containers/{id}/top', h.top, { since: '1.3', gate: { below: '1.4', status: 500, message: 'top was improved a lot since 1.3, Please upgrade your docker client.' } }),
      route('POST', '/containers/{id}/attach', h.attach, { since: '1.0', shapes: 'G10, as logs' }),
      route('GET', '/containers/{id}/attach/ws', h.attachWebSocket, { since: '1.4', addedFor: 'served by Docker from 0.6, never documented' }),
      route('POST', '/containers/{id}/wait', h.wait, { since: '1.0' }),
      route('GET', '/containers/{id}/changes', h.changes, { since: '1.0' }),
      route('GET', '/containers/{id}/export', h.export, { since: '1.0' }),
      route('POST', '/containers/{id}/copy', h.copy, { since: '1.4' }),
      route('HEAD', '/containers/{id}/archive', h.archiveHead, { since: '1.20', addedFor: 'docker cp of today\'s CLI' }),
      route('GET', '/containers/{id}/archive', h.archiveGet, { since: '1.20', addedFor: 'docker cp of today\'s CLI' }),
      route('PUT', '/containers/{id}/archive', h.archivePut, { since: '1.20', addedFor: 'docker cp of today\'s CLI' }),
      // `{name*}`: with `link=1` the name is `parent/alias`.
      route('DELETE', '/containers/{name*}', h.remove, { since: '1.0' }),
    ];
  }
}
