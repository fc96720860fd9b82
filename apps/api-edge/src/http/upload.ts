// Request bodies that stream up to a service (import, load, PUT archive):
// gathered into large messages, paced by gRPC flow control.
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { gatherChunks } from '@stevedore/service-kit';
import type { ApiRequest } from './api-request';

/** Sends the request body through `upload`, one message per gathered chunk, and ends it; cancels it if the body fails. */
export function pumpBody<T>(req: ApiRequest, upload: Writable & { cancel(): void }, wrap: (chunk: Buffer) => T): void {
  pipeline(
    gatherChunks(req.raw as AsyncIterable<Buffer>),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) yield wrap(chunk);
    },
    upload,
  ).catch(() => upload.cancel());
}
