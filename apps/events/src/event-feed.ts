// The feed behind every GET /events stream.
//
// One tail reader per process blocks on the event log (XREAD) and hands each
// new event to the live subscribers. A subscriber that starts in the past
// (`since`) or falls behind (its gRPC stream is full) leaves the live set and
// catches up from its own cursor with XRANGE at its own pace, then rejoins.
// Cursors are log IDs, so the seam between history and live events can
// neither lose nor repeat an event, and a slow reader is never skipped.

import type { Logger } from '@stevedore/logging';
import { compareLogIds, decodeEventEntry, type EventLog, type LoggedEvent, type Redis } from '@stevedore/redis';

const PAGE = 256;
const TRIM_INTERVAL_MS = 60_000;

type RawEntry = [id: string, fields: string[]];

/** Receives each live event as it is read from the log. */
type LiveSink = (event: LoggedEvent) => void;

export interface Subscription {
  /** Exclusive start: only events after this log ID. */
  cursor: string;
  /** Events at or after this time (ms) end the subscription. */
  endMs: number;
  /** When the clock reaches this time (ms), the subscription ends (after the replay). */
  closeMs: number;
  /** Delivers one event; resolves (or returns) when the reader can take more. */
  deliver(event: LoggedEvent): Promise<void> | undefined | boolean;
  signal: AbortSignal;
}

/** What the feed reads: the composition root connects them. */
export interface EventFeedSources {
  /** The event log (its key, and its trimming, which the feed runs periodically). */
  log: EventLog;
  /** Reads the log's history; the composition root closes it after stop(). */
  redis: Redis;
  /**
   * The tail's own connection, blocked in XREAD most of the time. The feed
   * disconnects it when it stops: nothing else ends a blocked read.
   */
  tail: Redis;
}

export class EventFeed {
  private readonly redis: Redis;
  private readonly tailRedis: Redis;
  private readonly log: EventLog;
  private tailCursor = '0-0';
  private readonly live = new Set<LiveSink>();
  private closed = false;
  private trimTimer?: NodeJS.Timeout;
  private tailDone?: Promise<void>;
  private active = 0;

  constructor(
    sources: EventFeedSources,
    private readonly logger: Logger,
  ) {
    this.redis = sources.redis;
    this.tailRedis = sources.tail;
    this.log = sources.log;
  }

  async start(): Promise<void> {
    const last = (await this.redis.xrevrange(this.log.key, '+', '-', 'COUNT', 1)) as RawEntry[];
    this.tailCursor = last.length ? last[0][0] : '0-0';
    this.tailDone = this.runTail();
    await this.log.trim();
    this.trimTimer = setInterval(() => {
      this.log.trim().catch((err) => this.logger.warn({ err }, 'trimming the event log failed'));
    }, TRIM_INTERVAL_MS);
  }

  /** Ends the tail and the periodic trim. */
  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.trimTimer);
    this.tailRedis.disconnect();
    await this.tailDone?.catch(() => undefined);
  }

  /** Subscribers currently streaming. */
  get listeners(): number {
    return this.active;
  }

  historyLength(): Promise<number> {
    return this.redis.xlen(this.log.key);
  }

  /** The log ID of the newest event the tail has seen: "now" for a new subscriber. */
  get now(): string {
    return this.tailCursor;
  }

  private async runTail(): Promise<void> {
    while (!this.closed) {
      let reply: Array<[string, RawEntry[]]> | null;
      try {
        reply = (await this.tailRedis.xread('COUNT', 512, 'BLOCK', 5000, 'STREAMS', this.log.key, this.tailCursor)) as Array<[string, RawEntry[]]> | null;
      } catch (err) {
        if (this.closed) return;
        this.logger.warn({ err }, 'reading the event log failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (!reply) continue;
      for (const [id, fields] of reply[0][1]) {
        this.tailCursor = id;
        const event = decodeEventEntry(id, fields);
        for (const sink of this.live) sink(event);
      }
    }
  }

  /**
   * Streams events to one subscriber until an event at `endMs`, the clock at
   * `closeMs` (once the log is replayed), or cancellation. Resolves when the
   * subscription ends.
   */
  async follow(sub: Subscription): Promise<void> {
    this.active++;
    try {
      let cursor = sub.cursor;
      for (;;) {
        // Catch up from the log until level with the tail.
        for (;;) {
          const page = (await this.redis.xrange(this.log.key, `(${cursor}`, '+', 'COUNT', PAGE)) as RawEntry[];
          for (const [id, fields] of page) {
            if (sub.signal.aborted) return;
            const event = decodeEventEntry(id, fields);
            if (event.timeMs >= sub.endMs) return;
            cursor = id;
            await sub.deliver(event);
          }
          if (sub.signal.aborted) return;
          if (page.length < PAGE && compareLogIds(cursor, this.tailCursor) >= 0) break;
        }
        if (Date.now() >= sub.closeMs) return;

        // Live: take events from the tail until the reader lags or the end.
        const outcome = await new Promise<'lag' | 'end'>((resolve) => {
          let timer: NodeJS.Timeout | undefined;
          const finish = (why: 'lag' | 'end') => {
            this.live.delete(sink);
            clearTimeout(timer);
            sub.signal.removeEventListener('abort', onAbort);
            resolve(why);
          };
          const onAbort = () => finish('end');
          let waiting = false;
          const sink: LiveSink = (event) => {
            if (waiting || compareLogIds(event.logId, cursor) <= 0) return;
            if (event.timeMs >= sub.endMs || Date.now() >= sub.closeMs) return finish('end');
            cursor = event.logId;
            const more = sub.deliver(event);
            if (more && typeof more === 'object') {
              // The reader is full: stop taking live events, catch up after the drain.
              waiting = true;
              this.live.delete(sink);
              more.then(() => finish('lag'), () => finish('end'));
            }
          };
          if (Number.isFinite(sub.closeMs)) timer = setTimeout(() => finish('end'), Math.max(0, sub.closeMs - Date.now()));
          sub.signal.addEventListener('abort', onAbort, { once: true });
          this.live.add(sink);
        });
        if (outcome === 'end') return;
      }
    } finally {
      this.active--;
    }
  }
}
