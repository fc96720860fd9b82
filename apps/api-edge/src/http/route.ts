// A route of the Docker API: method, path pattern, the API version whose docs
// first list it, the version gates of Docker 1.0's server, and the handler.
import type { ApiRequest } from './api-request';
import type { ApiResponse } from './api-response';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
export type Handler = (req: ApiRequest, res: ApiResponse) => Promise<void> | void;

/** Docker 1.0 refused some routes below a version (G4 `v < 1.3`, G8 `v < 1.4`) or above one (G11 `v > 1.6`) with a fixed error. */
export type VersionGate = ({ below: string; above?: undefined } | { above: string; below?: undefined }) & {
  status: number;
  message: string;
};

/** Whether a gate refuses a request of this version. */
export function gateRefuses(gate: VersionGate, request: { below(v: string): boolean; above(v: string): boolean }): boolean {
  return gate.below !== undefined ? request.below(gate.below) : request.above(gate.above);
}

export interface RouteOptions {
  /** The first API version whose docs list the route (served to every version all the same, as Docker 1.0 did). */
  since: string;
  /** Routes that Docker 1.0 did not have, served because today's clients need them. */
  addedFor?: string;
  gate?: VersionGate;
  /**
   * What the answer looks like at which versions, when it changes (the
   * handler applies it; listed here so that the conformance table shows
   * every version rule next to its route).
   */
  shapes?: string;
  /** The level its requests are logged at (`info` unless said). */
  logLevel?: 'debug';
}

export interface Route extends RouteOptions {
  method: Method;
  /** Pattern: `{id}` is one path segment, `{name*}` may span several (image names hold slashes). */
  path: string;
  handler: Handler;
  readonly pattern: RegExp;
  readonly keys: string[];
}

export function compilePath(path: string): { pattern: RegExp; keys: string[] } {
  const keys: string[] = [];
  const source = path
    .split(/(\{\w+\*?\})/)
    .map((part) => {
      const m = /^\{(\w+)(\*?)\}$/.exec(part);
      if (!m) return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
      keys.push(m[1]);
      return m[2] ? '(.+?)' : '([^/]+)';
    })
    .join('');
  return { pattern: new RegExp(`^${source}$`), keys };
}

export function route(method: Method, path: string, handler: Handler, options: RouteOptions): Route {
  return { method, path, handler, ...options, ...compilePath(path) };
}

/** What a domain module gives the router. */
export interface RouteTable {
  readonly domain: string;
  routes(): Route[];
}
