// The listening side: unix sockets (mode 0660, group `docker` when it
// exists) and, only with TLS settings, TCP. Under the supervisor the sockets
// are the supervisor's, inherited (STEVEDORE_API_LISTEN_FDS): they outlive
// this process, so a client arriving while it restarts waits in the backlog
// for the next one instead of being refused. Started alone, it makes its own.
// Requests that ask for an upgrade (today's docker CLI sends `Upgrade: tcp`
// on attach) reach Node's `upgrade` event instead of the request handler;
// both paths go through one router.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { ListenOptions, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Counter, Histogram, once, serveMetrics } from '@stevedore/metrics';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { StevedoreConfig } from '@stevedore/config';
import { STEVEDORE_VERSION } from '@stevedore/config';
import { acceptRequestId, REQUEST_ID_HEADER, type Logger } from '@stevedore/logging';
import { CURRENT_API_VERSION } from '@stevedore/docker-api';
import { checkTcpApiTls, grantApiSocket, inheritedApiListeners, parseApiHost, prepareApiSocketFile } from '@stevedore/service-kit';
import { CONFIG, LOGGER } from '../nest-context';
import { DockerRouter, type DispatchContext } from './router';

/** Headers on every answer. Api-Version is what today's clients negotiate with. */
const COMMON_HEADERS = Object.entries({ 'Api-Version': CURRENT_API_VERSION, Server: `Stevedore/${STEVEDORE_VERSION} (linux)` });
/** With STEVEDORE_API_CORS (Docker's --api-enable-cors): Docker 1.0's CORS headers too, on every answer. */
const CORS_HEADERS = Object.entries({
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Origin, X-Requested-With, Content-Type, Accept',
  'Access-Control-Allow-Methods': 'GET, POST, DELETE, PUT, OPTIONS',
});

export const ROUTER = Symbol('DockerRouter');

const apiRequests = once('stevedore_api_requests_total', () => new Counter({ name: 'stevedore_api_requests_total', help: 'Docker API requests answered, by method, route and status', labelNames: ['method', 'route', 'status'] }));
const apiSeconds = once('stevedore_api_request_duration_seconds', () => new Histogram({ name: 'stevedore_api_request_duration_seconds', help: 'Time to answer a Docker API request (to the end of its answer), by method and route', labelNames: ['method', 'route'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300] }));

function observeRequest(method: string, route: string, status: number, seconds: number): void {
  apiRequests.inc({ method, route, status: String(status) });
  apiSeconds.observe({ method, route }, seconds);
}

@Injectable()
export class HttpFront implements OnApplicationShutdown {
  private readonly servers: http.Server[] = [];
  /** Requests are counted and timed only where metrics are served (a listener per request costs the pings). */
  private metered = false;
  private metrics?: http.Server;

  constructor(
    @Inject(CONFIG) private readonly config: StevedoreConfig,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(ROUTER) private readonly router: DockerRouter,
  ) {}

  async listen(): Promise<void> {
    this.metrics = await serveMetrics(this.config.metricsAddress('api-edge'), this.log);
    this.metered = Boolean(this.metrics);
    const inherited = inheritedApiListeners();
    for (const host of this.config.hosts) await this.listenOn(host, inherited.get(host));
  }

  private createServer(tls: boolean): http.Server {
    // Node cuts a request after requestTimeout (five minutes by default), body
    // included: a `docker load` of a large image or a large build context would
    // end there. Only the headers are timed; uploads are bounded by size.
    const headersTimeout = this.config.apiHeadersTimeoutMs;
    const options: http.ServerOptions = {
      keepAliveTimeout: 30_000,
      requestTimeout: 0,
      headersTimeout,
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))),
    };
    let server: http.Server;
    if (tls) {
      const { cert, key, ca } = this.config.apiTls;
      server = https.createServer({
        ...options,
        cert: fs.readFileSync(cert!),
        key: fs.readFileSync(key!),
        ...(ca ? { ca: fs.readFileSync(ca), requestCert: true, rejectUnauthorized: true } : {}),
      });
    } else {
      server = http.createServer(options);
    }
    server.on('request', (req, res) => this.handle(req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Malformed requests and oversized headers: answer 4xx, keep serving.
      if (!socket.writable) return socket.destroy();
      const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request header too large'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request headers not received in time'] : [400, 'Malformed HTTP request'];
      const body = `${text}\n`;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    this.servers.push(server);
    return server;
  }

  /** Listens on `host`: on the descriptor the supervisor holds for it when there is one, else on a socket of its own. */
  private async listenOn(host: string, inheritedFd?: number): Promise<void> {
    const target = parseApiHost(host);
    const listen = (server: http.Server, where: ListenOptions | { fd: number }) =>
      new Promise<void>((resolve, reject) => server.once('error', reject).listen(where, () => resolve()));
    if (target.kind === 'unix') {
      const server = this.createServer(false);
      if (inheritedFd !== undefined) {
        // The supervisor made the file (mode, group) and removes it at `down`.
        await listen(server, { fd: inheritedFd });
        this.log.info({ host, fd: inheritedFd }, 'API listening (socket held by the supervisor)');
        return;
      }
      prepareApiSocketFile(target.path);
      await listen(server, { path: target.path });
      const group = grantApiSocket(target.path);
      this.log.info({ host, group }, 'API listening');
      return;
    }
    checkTcpApiTls(host, this.config.apiTls, this.config.apiTlsUnsafeNoClientCerts);
    if (!this.config.apiTls.ca) {
      this.log.warn({ host }, 'UNSAFE: TLS without client certificates (STEVEDORE_TLS_UNSAFE_NO_CLIENT_CERTS): anyone who reaches this port drives the engine as root');
    }
    const server = this.createServer(true);
    if (inheritedFd !== undefined) await listen(server, { fd: inheritedFd });
    else await listen(server, { port: target.port, host: target.hostname });
    this.log.info({ host, clientCerts: Boolean(this.config.apiTls.ca), ...(inheritedFd !== undefined ? { fd: inheritedFd } : {}) }, 'API listening (TLS)');
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, hijack?: { socket: Duplex; head: Buffer }): void {
    const started = process.hrtime.bigint();
    const requestId = acceptRequestId(req.headers[REQUEST_ID_HEADER]);
    const log = this.log;
    for (const [k, v] of COMMON_HEADERS) res.setHeader(k, v);
    if (this.config.apiCors) for (const [k, v] of CORS_HEADERS) res.setHeader(k, v);
    res.setHeader('X-Request-Id', requestId);
    // Logged at info, or at the level the route declares.
    const ctx: DispatchContext = { requestId, log, hijack, logLevel: 'info' };
    const dispatched = this.router.dispatch(req, res, ctx);
    // The route is known once dispatch returns (it resolves before its first await), and
    // 'finish' comes later: a request whose level is off (pings, usually) costs no listener.
    const level = ctx.logLevel;
    if (this.metered) res.on('finish', () => observeRequest(req.method ?? '', ctx.route ?? 'unmatched', res.statusCode, Number(process.hrtime.bigint() - started) / 1e9));
    if (log.isLevelEnabled(level)) {
      res.on('finish', () =>
        log[level](
          { reqId: requestId, method: req.method, url: req.url, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6, ua: req.headers['user-agent'] },
          'request',
        ),
      );
    }
    dispatched.catch((err) => {
      log.error({ err, reqId: requestId }, 'request failed');
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('Internal error\n');
      } else res.destroy();
    });
  }

  /**
   * An upgrade request: a normal answer is written on the socket through a
   * ServerResponse; a route that takes the connection over (attach) uses the
   * socket itself.
   */
  private handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const res = new http.ServerResponse(req);
    res.assignSocket(socket as Socket);
    res.shouldKeepAlive = false;
    res.on('finish', () => {
      if (!res.writableEnded || socket.destroyed) return;
      socket.end();
    });
    this.handle(req, res, { socket, head });
  }

  async onApplicationShutdown(): Promise<void> {
    this.metrics?.close();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections?.();
          }),
      ),
    );
  }
}
