// Docker 1.0's routing rules (docs/api/VERSIONS.md §2): an optional
// /vX.Y prefix, no prefix meaning 1.12, newer versions refused, unclean
// paths redirected, unknown routes 404, and OPTIONS answered everywhere.
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { CURRENT_API_VERSION, versionAtLeast } from '@stevedore/docker-api';
import type { Logger } from '@stevedore/logging';
import { ApiRequest, type Hijack } from './api-request';
import { ApiResponse } from './api-response';
import { gateRefuses, type Method, type Route, type RouteTable } from './route';

const VERSION_PREFIX = /^\/v([0-9.]+)(\/.*)$/;

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
  versionText: string;
}

export type Resolution =
  | { kind: 'route'; match: RouteMatch }
  | { kind: 'options' }
  | { kind: 'redirect'; location: string }
  | { kind: 'notFound' }
  | { kind: 'versionTooNew'; versionText: string };

/** How many parameterless paths (with their version prefixes) the router remembers per method. */
const REMEMBERED_PATHS = 512;
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export class DockerRouter {
  private readonly byMethod = new Map<string, Route[]>();
  /** Paths that reached a route without parameters, resolved once: a ping or a list skips the scan, the cleaning and the version check. */
  private readonly remembered = new Map<string, Map<string, Resolution>>();

  constructor(tables: RouteTable[]) {
    for (const table of tables) {
      for (const r of table.routes()) {
        const list = this.byMethod.get(r.method) ?? [];
        list.push(r);
        this.byMethod.set(r.method, list);
      }
    }
  }

  allRoutes(): Route[] {
    return [...this.byMethod.values()].flat();
  }

  /** Decides what a request is, before any handler runs. */
  resolve(method: string, pathname: string, search: string): Resolution {
    const known = this.remembered.get(method)?.get(pathname);
    if (known) return known;
    if (method === 'OPTIONS') return { kind: 'options' };
    const cleaned = cleanPath(pathname);
    if (cleaned !== pathname) return { kind: 'redirect', location: cleaned + search };

    let versionText = CURRENT_API_VERSION;
    let rest = pathname;
    const m = VERSION_PREFIX.exec(pathname);
    if (m) {
      versionText = m[1];
      rest = m[2];
    }
    const match = this.match(method as Method, rest);
    if (!match) return { kind: 'notFound' };
    if (!versionAtLeast(CURRENT_API_VERSION, versionText)) return { kind: 'versionTooNew', versionText };
    const resolution: Resolution = { kind: 'route', match: { ...match, versionText } };
    if (match.params === NO_PARAMS) this.remember(method, pathname, resolution);
    return resolution;
  }

  /** A bounded memory: clients send a handful of version prefixes, but any string may come. */
  private remember(method: string, pathname: string, resolution: Resolution): void {
    let paths = this.remembered.get(method);
    if (!paths) this.remembered.set(method, (paths = new Map()));
    if (paths.size < REMEMBERED_PATHS) paths.set(pathname, resolution);
  }

  private match(method: Method, pathname: string): Omit<RouteMatch, 'versionText'> | undefined {
    for (const r of this.byMethod.get(method) ?? []) {
      const m = r.pattern.exec(pathname);
      if (!m) continue;
      if (r.keys.length === 0) return { route: r, params: NO_PARAMS };
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1])));
      return { route: r, params };
    }
    return undefined;
  }

  /** Answers one request. */
  async dispatch(req: IncomingMessage, res: ServerResponse, ctx: DispatchContext): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const search = q < 0 ? '' : url.slice(q);
    const out = new ApiResponse(res);
    const resolution = this.resolve(req.method ?? 'GET', pathname, search);

    switch (resolution.kind) {
      case 'options':
        return out.noContent(200);
      case 'redirect':
        res.writeHead(301, { Location: resolution.location, 'Content-Length': 0 });
        return void res.end();
      case 'notFound':
        return out.text(404, '404 page not found\n');
      case 'versionTooNew':
        return out.text(404, `client and server don't have same version (client : ${resolution.versionText}, server: ${CURRENT_API_VERSION})\n`);
    }

    const { route, params, versionText } = resolution.match;
    if (route.logLevel) ctx.logLevel = route.logLevel;
    ctx.route = route.path;
    const request = new ApiRequest(req, res, versionText, params, search, ctx.requestId, ctx.log, ctx.hijack);
    if (route.gate && gateRefuses(route.gate, request)) return out.text(route.gate.status, `${route.gate.message}\n`);
    try {
      await route.handler(request, out);
    } catch (err) {
      if (!res.headersSent) return out.error(err);
      ctx.log.warn({ err, reqId: ctx.requestId }, 'failed after the answer started');
      res.destroy();
    }
  }
}

/** What a request carries through dispatch; the route may lower the level its request is logged at. */
export interface DispatchContext {
  requestId: string;
  log: Logger;
  hijack?: Hijack;
  logLevel: 'info' | 'debug';
  /** The route's path as declared (`/containers/{id}/json`), once matched: what metrics count by. */
  route?: string;
}

/** Go's path.Clean as Docker's router applied it (a trailing slash is kept). */
export function cleanPath(p: string): string {
  if (p === '') return '/';
  // Most paths are clean already (no empty, `.` or `..` segment): nothing to do.
  if (p.startsWith('/') && !/\/\/|\/\.\.?(\/|$)/.test(p)) return p;
  let cleaned = path.posix.normalize(p.startsWith('/') ? p : `/${p}`);
  if (cleaned.length > 1 && cleaned.endsWith('/') && !p.endsWith('/')) cleaned = cleaned.slice(0, -1);
  if (p.endsWith('/') && !cleaned.endsWith('/')) cleaned += '/';
  return cleaned;
}
