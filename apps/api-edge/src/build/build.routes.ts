import { Injectable } from '@nestjs/common';
import { route, type RouteTable } from '../http/route';
import { BuildHandlers } from './build.handlers';

@Injectable()
export class BuildRoutes implements RouteTable {
  readonly domain = 'build';

  constructor(private readonly h: BuildHandlers) {}

  routes() {
    return [
      // Gate G4: before v1.3 the context came as a multipart form, which Docker 1.0 refused.
      route('POST', '/build', this.h.build, {
        since: '1.0',
        gate: { below: '1.3', status: 500, message: 'Multipart upload for build is no longer supported. Please upgrade your docker client.' },
        shapes: 'G5: X-Registry-Auth for FROM below v1.9; G6: text below v1.8, a JSON stream from v1.8; G7: rm on by default from v1.12',
      }),
    ];
  }
}
