// GET /events: the history (since/until) and the live stream, from the
// events service over a gRPC server stream, with back-pressure end to end.
import { Injectable } from '@nestjs/common';
import * as grpc from '@grpc/grpc-js';
import { EVENTS_LOG_POSITION_HEADER, type events } from '@stevedore/contracts';
import { backendError, isUnavailable } from '@stevedore/service-kit';
import { invalid, unavailable } from '@stevedore/errors';
import type { ApiRequest } from '../http/api-request';
import type { ApiResponse } from '../http/api-response';
import { Backends } from '../backends/backends';
import { eventJson } from './event-shape';
import { RemovalsInFlight } from '../backends/removals-in-flight';

/** How long to wait for the events service to accept the subscription. */
const SUBSCRIBE_TIMEOUT_MS = 5000;
/** How long a stream whose events service went away waits for it to come back (the supervisor restarts it). */
const RESUME_WITHIN_MS = 30_000;
/** The same for a first subscription refused by a service that is restarting. */
const FIRST_SUBSCRIBE_WITHIN_MS = 10_000;
/** Resumes in a row that bring no event before the stream fails again: then it ends. */
const MAX_BARREN_RESUMES = 5;

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
  ) {}

  events = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const request: events.SubscribeRequest = {
      since: req.unixSeconds('since'),
      until: req.unixSeconds('until'),
      filters: readFilters(req),
      afterLogId: '',
    };
    // Times the event log can hold in milliseconds (and the wire in a 64-bit integer).
    if (Math.max(request.since, request.until) > Number.MAX_SAFE_INTEGER / 1000) throw invalid('since and until must be times the event log can hold');
    // The first subscription's refusal is still a proper HTTP error.
    let stream = await this.subscribe(req, request).catch(async (err) => {
      // Refused while the events service restarts (killed in the middle of a subscription): asked again for a while.
      if (!isUnavailable(err)) throw err;
      const again = await this.resume(req, request, FIRST_SUBSCRIBE_WITHIN_MS);
      if (!again) throw err;
      return again;
    });
    res.startStream(200, 'application/json');
    // Where the stream stands: a restart of the events service costs a client nothing,
    // the subscription is taken up again from here.
    let position = stream.position;
    // Resumes that brought nothing new: a failure that comes back at once is not a restart.
    let barren = 0;
    for (;;) {
      const from = position;
      const lost = await this.relay(req, res, stream.call, (logId) => (position = logId));
      if (!lost || req.signal.aborted) break;
      barren = position === from ? barren + 1 : 0;
      if (barren > MAX_BARREN_RESUMES) {
        req.log.warn({ position }, 'the event stream failed again at once after every resume: it ends');
        break;
      }
      await new Promise((r) => setTimeout(r, 100 * 2 ** barren));
      const resumed = await this.resume(req, { ...request, afterLogId: position });
      if (!resumed) break;
      stream = resumed;
    }
    res.end();
  };

  /** Subscribes; resolves once the events service has accepted (its headers name the starting position). */
  private async subscribe(req: ApiRequest, request: events.SubscribeRequest): Promise<{ call: grpc.ClientReadableStream<events.Event>; position: string }> {
    const call = this.backends.events.subscribe(request, { requestId: req.requestId });
    const cancel = () => call.cancel();
    req.signal.addEventListener('abort', cancel, { once: true });
    // Every call ends with a status, refused or not: the listener goes with it.
    call.once('status', () => req.signal.removeEventListener('abort', cancel));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        call.cancel();
        reject(unavailable(`Cannot reach the events service: no answer within ${SUBSCRIBE_TIMEOUT_MS} ms`));
      }, SUBSCRIBE_TIMEOUT_MS);
      call.once('metadata', (headers: grpc.Metadata) => {
        clearTimeout(timer);
        resolve({ call, position: String(headers.get(EVENTS_LOG_POSITION_HEADER)[0] ?? request.afterLogId) });
      });
      call.once('error', (err) => {
        clearTimeout(timer);
        reject(backendError(err, 'events'));
      });
    });
  }

  /** Subscribes again after the events service went away, for up to RESUME_WITHIN_MS. */
  private async resume(req: ApiRequest, request: events.SubscribeRequest, withinMs = RESUME_WITHIN_MS): Promise<{ call: grpc.ClientReadableStream<events.Event>; position: string } | undefined> {
    const deadline = Date.now() + withinMs;
    for (let delay = 100; !req.signal.aborted && Date.now() < deadline; delay = Math.min(delay * 2, 1000)) {
      try {
        return await this.subscribe(req, request);
      } catch (err) {
        req.log.debug({ err: (err as Error).message }, 'the events service is not back yet');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    req.log.warn('the events service did not come back: the event stream ends');
    return undefined;
  }

  /**
   * Writes the stream's events at the client's pace; resolves true when the
   * stream was lost (the service went away), false when it ended. Once it
   * resolves, nothing more of this stream is written (what it still holds
   * comes again from the resumed one).
   */
  private relay(req: ApiRequest, res: ApiResponse, stream: grpc.ClientReadableStream<events.Event>, seen: (logId: string) => void): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let current = true;
      const finish = (lost: boolean) => {
        if (!current) return;
        current = false;
        stream.removeAllListeners('data');
        stream.destroy();
        resolve(lost);
      };
      stream.on('data', (event: events.Event) => {
        // A `destroy` goes out after the answers of the removals in flight.
        const held = event.action === 'destroy' ? this.removals.answered() : undefined;
        const send = () => {
          if (!current) return;
          seen(event.logId);
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
      stream.on('end', () => finish(false));
      stream.on('error', (err: Error & { code?: number }) => {
        if (req.signal.aborted) return finish(false);
        // The service went away (killed, restarting): resumable. Anything else ends the stream.
        const lost = err.code === grpc.status.UNAVAILABLE;
        req.log.warn({ err: err.message, resuming: lost }, 'event stream ended by an error');
        finish(lost);
      });
    });
  }
}
