import { Injectable } from '@nestjs/common';
import { route, type RouteTable } from '../http/route';
import { ImagesHandlers } from './images.handlers';

@Injectable()
export class ImagesRoutes implements RouteTable {
  readonly domain = 'images';

  constructor(private readonly h: ImagesHandlers) {}

  routes() {
    const h = this.h;
    // Fixed paths first: `{name*}` would take them otherwise.
    return [
      route('GET', '/images/json', h.list, { since: '1.0', shapes: 'G12: one legacy entry per repo:tag below v1.7; one per image from v1.7' }),
      // Gate G11: above v1.6 the client draws the graph itself.
      route('GET', '/images/viz', h.viz, { since: '1.0', gate: { above: '1.6', status: 404, message: 'This is now implemented in the client.' } }),
      route('POST', '/images/create', h.create, { since: '1.0', shapes: 'G1: text at v1.0, a JSON stream above; G2: a pull of every tag one tag at a time up to v1.3, side by side above' }),
      route('GET', '/images/get', h.save, { since: '1.7', addedFor: 'docker save of today\'s CLI (API 1.15 form)' }),
      route('POST', '/images/load', h.load, { since: '1.7' }),
      route('GET', '/images/search', h.search, { since: '1.0' }),
      route('POST', '/commit', h.commit, { since: '1.0' }),
      route('GET', '/images/{name*}/json', h.inspect, { since: '1.0', shapes: 'G14: the stored metadata (lower_snake, no newline) below v1.12; sorted CamelCase from v1.12' }),
      route('GET', '/images/{name*}/history', h.history, { since: '1.0' }),
      route('POST', '/images/{name*}/tag', h.tag, { since: '1.0' }),
      route('GET', '/images/{name*}/get', h.save, { since: '1.7', shapes: 'G3: no content type at v1.0, `application/x-tar` above' }),
      route('POST', '/images/{name*}/push', h.push, { since: '1.0', shapes: 'G1, as /images/create' }),
      route('DELETE', '/images/{name*}', h.remove, { since: '1.0' }),
    ];
  }
}
