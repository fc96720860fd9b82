// Raw HTTP over an engine's unix socket, streaming both ways.
import * as fs from 'node:fs';
import * as http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';

export interface Answer {
  status: number;
  body: string;
  bytes: number;
}

/** A request whose body is a file (streamed) or nothing; the answer is counted, or kept when small. */
export function send(socket: string, method: string, path: string, options: { file?: string; keep?: boolean; agent?: http.Agent; headers?: http.OutgoingHttpHeaders } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const typed = options.file ? { 'Content-Type': 'application/x-tar', 'Content-Length': fs.statSync(options.file).size } : {};
    const req = http.request({ socketPath: socket, method, path, agent: options.agent ?? false, headers: { ...typed, ...options.headers } }, (res) => {
      let bytes = 0;
      let body = '';
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        if (options.keep !== false && body.length < 1_000_000) body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.file) fs.createReadStream(options.file).pipe(req);
    else req.end();
  });
}

/** GET whose answer goes to a file. */
export function download(socket: string, path: string, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: socket, path, agent: false }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`${path}: ${res.statusCode}`));
        let bytes = 0;
        res.on('data', (d: Buffer) => (bytes += d.length));
        pipeline(res, fs.createWriteStream(file)).then(() => resolve(bytes), reject);
      })
      .on('error', reject);
  });
}

export const discard = () => new Writable({ write: (_c, _e, cb) => cb() });

/** A request with a JSON body (or none); the answer parsed as JSON when it is JSON. */
export function json(socket: string, method: string, p: string, body?: unknown, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const typed = text ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) } : {};
    const req = http.request({ socketPath: socket, method, path: p, agent: false, headers: { ...typed, ...headers } }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => {
        let parsed: unknown = b;
        try {
          parsed = b ? JSON.parse(b) : undefined;
        } catch {
          // text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** A GET on a kept-alive agent that must answer 200; its body is discarded. */
export function getOk(agent: http.Agent, socket: string, urlPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: socket, path: urlPath, agent }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${urlPath}: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}
