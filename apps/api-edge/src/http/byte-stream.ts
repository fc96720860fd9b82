// Raw byte answers streamed from a service (save, export, copy): the HTTP
// answer starts with the first chunk, so a failure before it (an unknown
// name) is still a plain HTTP error; a failure after it cuts the stream, as
// Docker 1.0 did (the client sees a truncated archive).
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { ApiRequest } from './api-request';
import type { ApiResponse } from './api-response';
import { backendError } from '../backends/backends';

export async function streamBytes(
  req: ApiRequest,
  res: ApiResponse,
  call: ClientReadableStream<{ data: Uint8Array }>,
  service: string,
  contentType: string | undefined,
): Promise<void> {
  req.signal.addEventListener('abort', () => call.cancel(), { once: true });
  await new Promise<void>((resolve, reject) => {
    call.on('data', (m: { data: Uint8Array }) => {
      if (!res.started) res.startStream(200, contentType);
      const wait = res.write(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
      if (wait) {
        call.pause();
        void wait.then(() => call.resume());
      }
    });
    call.on('end', () => resolve());
    call.on('error', (err) => {
      if (req.signal.aborted) return resolve();
      if (!res.started) return reject(backendError(err, service));
      req.log.warn({ err: err.message }, 'stream cut short');
      res.raw.destroy();
      resolve();
    });
  });
  if (!res.started) res.startStream(200, contentType);
  res.end();
}
