// Streams of progress messages (import, pull, push, build's pull): the HTTP
// answer starts with the first message, so a failure before it is still a
// plain HTTP error with Docker's status; after it, the failure is the
// stream's last message. JSON from v1.1, text for v1.0 (gate G1).
import type { ClientReadableStream, ClientDuplexStream } from '@grpc/grpc-js';
import { toProgressMessage, type images } from '@stevedore/contracts';
import { jsonMessage, textMessage, type ProgressMessage } from '@stevedore/docker-api';
import { toHttpError } from '@stevedore/errors';
import type { ApiRequest } from './api-request';
import type { ApiResponse } from './api-response';
import { relayStream } from './relay';

export async function streamProgress(
  req: ApiRequest,
  res: ApiResponse,
  call: ClientReadableStream<images.Progress> | ClientDuplexStream<unknown, images.Progress>,
  service: string,
): Promise<void> {
  const json = req.above('1.0'); // gate G1
  const format = (m: ProgressMessage) => (json ? jsonMessage(m) : textMessage(m));
  const start = () => {
    if (!res.started) res.startStream(200, json ? 'application/json' : undefined);
  };
  await relayStream(req, res, call as ClientReadableStream<images.Progress>, {
    service,
    start,
    render: (p) => format(toProgressMessage(p)),
    lateFailure: (err) => void res.write(format({ error: toHttpError(err, service).message })),
  });
}
