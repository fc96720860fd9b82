// A request as a handler sees it: the API version, path parameters, typed
// query readers following Docker 1.0's conventions, and the request id.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { invalid } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import { parseApiVersion, type ApiVersion, versionAtLeast, versionAbove, versionBelow } from '@stevedore/docker-api';

const MAX_JSON_BODY = 1024 * 1024;
/** How long the body of an upgraded request (exec start's JSON) may take to arrive. */
const UPGRADED_BODY_WITHIN_MS = 30_000;

export interface Hijack {
  socket: Duplex;
  head: Buffer;
}

/** The reason a request's signal carries: made once, so aborting costs no stack trace. */
const CLIENT_GONE = Object.freeze({ name: 'ClientGone', message: 'the client closed the connection' });

export class ApiRequest {
  readonly version: ApiVersion;
  private controller?: AbortController;
  private logger?: Logger;

  constructor(
    readonly raw: IncomingMessage,
    private readonly response: ServerResponse,
    readonly versionText: string,
    readonly params: Record<string, string>,
    /** The query string, with its `?` or empty; parsed on first use (a ping never needs it). */
    private readonly search: string,
    readonly requestId: string,
    private readonly baseLog: Logger,
    /** Set when the request came through the HTTP upgrade path. */
    readonly hijack?: Hijack,
  ) {
    this.version = parseApiVersion(versionText);
  }

  private parsedQuery?: URLSearchParams;

  get query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(this.search));
  }

  /** Aborted when the client goes away (made on first use: most handlers never need it). */
  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      if (this.response.closed) controller.abort(CLIENT_GONE);
      else this.response.once('close', () => controller.abort(CLIENT_GONE));
    }
    return this.controller.signal;
  }

  /**
   * The connection, taken over by the handler as a raw pipe (attach). An
   * upgraded request's socket is free already. Otherwise the HTTP server
   * lets go of it: its parser's data and end listeners are removed, so that
   * the client's input (stdin, sent after the request as Docker 1.0's
   * clients did) is not read as another request, and a half-close (the end
   * of stdin) does not close the output. The handler's own data listener
   * then takes the socket's bytes from the parser.
   */
  takeOver(): Duplex {
    if (this.hijack) return this.hijack.socket;
    const socket = this.raw.socket;
    this.response.detachSocket(socket);
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.setTimeout(0);
    return socket;
  }

  /** A logger carrying the request id. */
  get log(): Logger {
    return (this.logger ??= this.baseLog.child({ reqId: this.requestId }));
  }

  atLeast(version: string): boolean {
    return versionAtLeast(this.version, version);
  }

  below(version: string): boolean {
    return versionBelow(this.version, version);
  }

  /** Strictly newer than `version` (the gates Docker 1.0 wrote as `v > X`). */
  above(version: string): boolean {
    return versionAbove(this.version, version);
  }

  header(name: string): string | undefined {
    const v = this.raw.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  /** Docker 1.0's booleans: "", 0, no, false, none are false; anything else true. */
  bool(name: string, fallback = false): boolean {
    const v = this.query.get(name);
    if (v === null) return fallback;
    return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
  }

  string(name: string, fallback = ''): string {
    return this.query.get(name) ?? fallback;
  }

  /** An integer; a value that is not one is a 400 (Docker 1.0 silently read it as 0). */
  int(name: string, fallback = 0): number {
    const v = this.query.get(name);
    if (v === null || v === '') return fallback;
    if (!/^-?\d+$/.test(v.trim())) throw invalid(`Invalid value for ${name}: ${JSON.stringify(v)} is not an integer`);
    return Number.parseInt(v, 10);
  }

  /** Unix seconds, also in the `<seconds>.<nanoseconds>` form today's CLI sends; truncated. */
  unixSeconds(name: string): number {
    const v = this.query.get(name);
    if (v === null || v === '') return 0;
    if (!/^\d+(\.\d+)?$/.test(v.trim())) throw invalid(`Invalid value for ${name}: ${JSON.stringify(v)} is not a Unix timestamp`);
    // Truncate as text: Number("1795792876.999999999") rounds up to the next second.
    return Number(v.trim().split('.')[0]);
  }

  /** A JSON query value such as `filters`. */
  jsonParam<T>(name: string): T | undefined {
    const v = this.query.get(name);
    if (v === null || v === '') return undefined;
    try {
      return JSON.parse(v) as T;
    } catch {
      throw invalid(`Invalid value for ${name}: not valid JSON`);
    }
  }

  /** Reads a small body (a config, not a stream). */
  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.raw as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_JSON_BODY) throw invalid(`Request body larger than ${MAX_JSON_BODY} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * The body of a request whose connection is taken over (exec start's
   * JSON). Through the upgrade path, the parser left it unread: its
   * Content-Length bytes are taken from what followed the headers, then from
   * the socket, and the rest is left in `hijack.head` (the client's first
   * stdin), the socket paused.
   */
  async bodyBeforeTakeOver(): Promise<string> {
    const h = this.hijack;
    if (!h) return this.text();
    if (this.header('transfer-encoding')) throw invalid('An upgraded request\'s body must have a Content-Length (it is not read chunked)');
    const length = Number(this.header('content-length') ?? 0);
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_JSON_BODY) throw invalid(`Invalid Content-Length for an upgraded request: ${this.header('content-length')}`);
    if (h.head.length < length) {
      const chunks = [h.head];
      let size = h.head.length;
      await new Promise<void>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size >= length) done();
        };
        const onEnd = () => done(invalid('The client went away before sending its request body'));
        const timer = setTimeout(() => done(invalid(`The request body did not come within ${UPGRADED_BODY_WITHIN_MS / 1000} s`)), UPGRADED_BODY_WITHIN_MS);
        const done = (err?: Error) => {
          clearTimeout(timer);
          h.head = Buffer.concat(chunks, size);
          h.socket.off('data', onData);
          h.socket.off('end', onEnd);
          h.socket.off('close', onEnd);
          h.socket.pause();
          if (err) reject(err);
          else resolve();
        };
        h.socket.on('data', onData);
        h.socket.once('end', onEnd);
        h.socket.once('close', onEnd);
      });
    }
    const body = h.head.subarray(0, length).toString('utf8');
    h.head = h.head.subarray(length);
    return body;
  }

  /** Reads a small JSON body; malformed JSON is a 400. */
  async json<T>(): Promise<T> {
    const text = await this.text();
    if (text.trim() === '') throw invalid('Request body is empty: a JSON object was expected');
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw invalid(`Request body is not valid JSON: ${(err as Error).message}`);
    }
  }
}
