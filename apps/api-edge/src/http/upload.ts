// Request bodies that stream up to a service (import, load, PUT archive):
// gathered into large messages, paced by gRPC flow control.
import { once } from 'node:events';
import type { EventEmitter } from 'node:events';
import { gatherChunks } from '@stevedore/service-kit';
import type { ApiRequest } from './api-request';

interface Upload<T> extends EventEmitter {
  write(message: T): boolean;
  end(): void;
  cancel(): void;
}

/** Sends the request body through `upload`, one message per gathered chunk; ends it at the end of the body. */
export function pumpBody<T>(req: ApiRequest, upload: Upload<T>, wrap: (chunk: Buffer) => T): void {
  void (async () => {
    try {
      for await (const chunk of gatherChunks(req.raw as AsyncIterable<Buffer>)) {
        if (!upload.write(wrap(chunk))) await once(upload, 'drain');
      }
      upload.end();
    } catch {
      upload.cancel();
    }
  })();
}
