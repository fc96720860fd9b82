// The Events gRPC service, its handlers typed by the generated definition.
import { Metadata } from '@grpc/grpc-js';
import { events, EVENTS_LOG_POSITION_HEADER } from '@stevedore/contracts';
import type { LoggedEvent } from '@stevedore/redis';
import { writeWithBackpressure, type ServiceHandlers } from '@stevedore/service-kit';
import { invalid } from '@stevedore/errors';
import type { EventFeed, Subscription } from './event-feed';
import { compileFilters, FILTER_KEYS } from './filters';

/** The largest sequence number of a stream ID: "everything within this millisecond". */
const MAX_SEQ = '18446744073709551615';

/**
 * Where a subscription starts and ends, from Docker's `since` and `until`
 * (whole seconds, 0 for none) or a log position to resume after: `since`
 * replays events whose second is at or after it; `until` replays those up to
 * the end of its second too, and closes the stream when the clock reaches
 * it, as Docker 1.0 did. Without either, the stream starts at `now`.
 */
export function subscriptionWindow(req: Pick<events.SubscribeRequest, 'since' | 'until' | 'afterLogId'>, now: string): Pick<Subscription, 'cursor' | 'endMs' | 'closeMs'> {
  return {
    cursor: req.afterLogId || (req.since > 0 ? `${req.since * 1000 - 1}-${MAX_SEQ}` : now),
    endMs: req.until > 0 ? (req.until + 1) * 1000 : Infinity,
    closeMs: req.until > 0 ? req.until * 1000 : Infinity,
  };
}

function toMessage(e: LoggedEvent): events.Event {
  return { type: e.type, action: e.action, id: e.id, from: e.from, attributes: e.attributes, timeMs: e.timeMs, logId: e.logId };
}

export class EventsRpc {
  constructor(private readonly feed: EventFeed) {}

  handlers(): ServiceHandlers<typeof events.EventsService> {
    return {
      subscribe: async (req, stream, ctx) => {
        for (const key of Object.keys(req.filters)) {
          if (!FILTER_KEYS.includes(key)) throw invalid(`Invalid filter '${key}'`);
        }
        if (req.since < 0 || req.until < 0) throw invalid('since and until must not be negative');
        const matches = compileFilters(req.filters);
        // Positions are two unsigned 64-bit numbers; a time beyond that is no position at all.
        const UINT64_MAX = 2n ** 64n - 1n;
        if (req.afterLogId && (!/^\d{1,20}-\d{1,20}$/.test(req.afterLogId) || req.afterLogId.split('-').some((n) => BigInt(n) > UINT64_MAX))) throw invalid('after_log_id must be a log position such as 1700000000000-0');
        if (BigInt(Math.max(req.since, req.until)) * 1000n > UINT64_MAX) throw invalid('since and until must be times the event log can hold');
        const { cursor, endMs, closeMs } = subscriptionWindow(req, this.feed.now);
        // Headers now: the API edge answers 200 only once the subscription is accepted.
        // With the starting position, from which a client that lost the stream resumes (after_log_id).
        const headers = new Metadata();
        headers.set(EVENTS_LOG_POSITION_HEADER, cursor);
        stream.sendMetadata(headers);
        await this.feed.follow({
          cursor,
          endMs,
          closeMs,
          signal: ctx.signal,
          deliver: (event) => (matches(event) ? writeWithBackpressure(stream, toMessage(event), ctx.signal) : undefined),
        });
      },
      info: async () => ({
        listeners: this.feed.listeners,
        historyLength: await this.feed.historyLength(),
      }),
    };
  }
}
