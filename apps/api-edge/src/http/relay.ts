// Relaying a service's stream to an HTTP answer that starts with the first
// message: a failure before it is still a plain HTTP error with Docker's
// status; after it, `lateFailure` reports it the way the endpoint does.
// The client's pace sets the service's (back-pressure end to end).
import type { ClientReadableStream } from '@grpc/grpc-js';
import { backendError } from '@stevedore/service-kit';
import type { ApiRequest } from './api-request';
import type { ApiResponse } from './api-response';


export interface RelayOptions<M> {
  service: string;
  /** Sends the headers (once). */
  start(): void;
  /** One chunk: a piece, or pieces sent together without being joined. */
  render(message: M): string | Buffer | [Buffer, ...Uint8Array[]];
  lateFailure(err: Error): void;
}

export async function relayStream<M>(req: ApiRequest, res: ApiResponse, call: ClientReadableStream<M>, o: RelayOptions<M>): Promise<void> {
  req.signal.addEventListener('abort', () => call.cancel(), { once: true });
  await new Promise<void>((resolve, reject) => {
    call.on('data', (m: M) => {
      o.start();
      const chunk = o.render(m);
      const wait = Array.isArray(chunk) ? res.write(...chunk) : res.write(chunk);
      if (wait) {
        call.pause();
        void wait.then(() => call.resume());
      }
    });
    call.on('end', () => resolve());
    call.on('error', (err) => {
      if (req.signal.aborted) return resolve();
      if (!res.started) return reject(backendError(err, o.service));
      o.lateFailure(err);
      resolve();
    });
  });
  o.start();
  res.end();
}
