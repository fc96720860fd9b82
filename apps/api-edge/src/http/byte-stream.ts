// Raw byte answers streamed from a service (save, export, copy): the HTTP
// answer starts with the first chunk, so a failure before it (an unknown
// name) is still a plain HTTP error; a failure after it cuts the stream, as
// Docker 1.0 did (the client sees a truncated archive).
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { ApiRequest } from './api-request';
import type { ApiResponse } from './api-response';
import { relayStream } from './relay';

export async function streamBytes(
  req: ApiRequest,
  res: ApiResponse,
  call: ClientReadableStream<{ data: Uint8Array }>,
  service: string,
  contentType: string | undefined,
): Promise<void> {
  await relayStream(req, res, call, {
    service,
    start: () => {
      if (!res.started) res.startStream(200, contentType);
    },
    render: (m) => Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength),
    lateFailure: (err) => {
      req.log.warn({ err: err.message }, 'stream cut short');
      res.raw.destroy();
    },
  });
}
