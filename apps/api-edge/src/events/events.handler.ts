// GET /events: the history (since/until) and the live stream, from the
// events service over a gRPC server stream, with back-pressure end to end.
import { Inject, Injectable } from '@nestjs/common';
import type { events } from '@stevedore/contracts';
import type { Logger } from '@stevedore/logging';
import { callOptions, LOGGER } from '@stevedore/service-kit';
import { invalid, unavailable } from '@stevedore/errors';
import type { ApiRequest } from '../http/api-request';
import type { ApiResponse } from '../http/api-response';
import { backendError, Backends } from '../backends/backends';
import { eventJson } from './event-shape';
import { RemovalsInFlight } from '../backends/removals-in-flight';

/** How long to wait for the events service to accept the subscription. */
const SUBSCRIBE_TIMEOUT_MS = 5000;

function readFilters(req: ApiRequest): Record<string, events.FilterValues> {
  const raw = req.jsonParam<unknown>('filters');
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('Invalid value for filters: a JSON object was expected');
  const filters: Record<string, events.FilterValues> = {};
  for (const [key, value] of Object.entries(raw)) {
    // Today's CLI sends {"key":["v"]}; newer ones {"key":{"v":true}}.
    const values = Array.isArray(value) ? value.map(String) : value && typeof value === 'object' ? Object.keys(value) : [String(value)];
    filters[key] = { values };
  }
  return filters;
}

@Injectable()
export class EventsHandler {
  constructor(
    private readonly backends: Backends,
    private readonly removals: RemovalsInFlight,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  events = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const request: events.SubscribeRequest = {
      since: req.unixSeconds('since'),
      until: req.unixSeconds('until'),
      filters: readFilters(req),
    };
    const { metadata, options } = callOptions(req.requestId);
    const stream = this.backends.events.subscribe(request, metadata, options);
    req.signal.addEventListener('abort', () => stream.cancel(), { once: true });

    // The service sends its headers once it has accepted the subscription:
    // only then do we answer 200, so a refusal is still a proper HTTP error.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.cancel();
        reject(unavailable(`Cannot reach the events service: no answer within ${SUBSCRIBE_TIMEOUT_MS} ms`));
      }, SUBSCRIBE_TIMEOUT_MS);
      stream.once('metadata', () => {
        clearTimeout(timer);
        resolve();
      });
      stream.once('error', (err) => {
        clearTimeout(timer);
        reject(backendError(err, 'events'));
      });
    });

    res.startStream(200, 'application/json');
    await new Promise<void>((resolve) => {
      stream.on('data', (event: events.Event) => {
        // A `destroy` goes out after the answers of the removals in flight.
        const held = event.action === 'destroy' ? this.removals.answered() : undefined;
        const send = () => {
          const wait = res.write(`${eventJson(event)}\n`);
          if (wait) {
            stream.pause();
            void wait.then(() => stream.resume());
          } else if (held) stream.resume();
        };
        if (!held) return send();
        stream.pause();
        void held.then(send);
      });
      stream.on('end', resolve);
      stream.on('error', (err: Error & { code?: number }) => {
        if (!req.signal.aborted) req.log.warn({ err: err.message }, 'event stream ended by an error');
        resolve();
      });
    });
    res.end();
  };
}
