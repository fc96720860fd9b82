// Writing Docker's answers: JSON documents followed by a newline, plain-text
// errors, and streams that honour back-pressure.
import type { ServerResponse } from 'node:http';
import { engineList, goJson } from '@stevedore/docker-api';
import { toHttpError } from '@stevedore/errors';

export class ApiResponse {
  constructor(readonly raw: ServerResponse) {}

  get started(): boolean {
    return this.raw.headersSent;
  }

  /** A JSON document; Docker 1.0 followed each with a newline, except the structures it serialised directly (`newline` false). */
  json(status: number, body: unknown, headers: Record<string, string> = {}, newline = true): void {
    this.jsonText(status, newline ? `${goJson(body)}\n` : goJson(body), headers);
  }

  /** A list as Docker 1.0's engine tables wrote it: `[{…}\n,{…}\n]` (containers, images from v1.7, history, changes, search, image removal). */
  list(status: number, items: unknown[]): void {
    this.jsonText(status, engineList(items), {});
  }

  private jsonText(status: number, text: string, headers: Record<string, string>): void {
    this.raw.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    this.raw.end(text);
  }

  text(status: number, text: string, headers: Record<string, string> = {}): void {
    this.raw.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    this.raw.end(text);
  }

  noContent(status = 204): void {
    this.raw.writeHead(status);
    this.raw.end();
  }

  /** Docker 1.0's error answer: the message and a newline, as plain text. */
  error(err: unknown, service?: string): void {
    const { status, message } = toHttpError(err, service);
    this.text(status, `${message}\n`);
  }

  /** Starts a streamed answer and sends the headers at once (clients wait for them). */
  startStream(status: number, contentType?: string): void {
    const headers: Record<string, string> = {};
    if (contentType) headers['Content-Type'] = contentType;
    this.raw.writeHead(status, headers);
    this.raw.flushHeaders();
  }

  /** Writes one chunk (of several parts, sent together without being joined); resolves when the client can take more. */
  write(chunk: string | Buffer, ...more: Uint8Array[]): Promise<void> | undefined {
    // A client that went away takes nothing more, and will not say so again ('close' has been emitted).
    if (this.raw.destroyed || this.raw.closed) return undefined;
    let open: boolean;
    if (more.length) {
      this.raw.cork();
      this.raw.write(chunk);
      for (const part of more.slice(0, -1)) this.raw.write(part);
      open = this.raw.write(more[more.length - 1]);
      this.raw.uncork();
    } else {
      open = this.raw.write(chunk);
    }
    if (open || this.raw.destroyed || this.raw.closed) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        this.raw.off('drain', done);
        this.raw.off('close', done);
        resolve();
      };
      this.raw.on('drain', done);
      this.raw.on('close', done);
    });
  }

  end(): void {
    this.raw.end();
  }
}
