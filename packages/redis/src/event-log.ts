// The event log: one Redis stream that every service appends its events to.
// The events service reads it to serve GET /events (history and live), so the
// stream is both the bus and the durable history; its entry IDs order events
// and carry the time each was recorded.
import type Redis from 'ioredis';

export interface NewEvent {
  /** "container" or "image". */
  type: string;
  /** Docker's status: create, start, die, untag, delete, ... */
  action: string;
  /** Full ID of the container or image. */
  id: string;
  /** Image name, for container events. */
  from?: string;
  attributes?: Record<string, string>;
}

export interface LoggedEvent extends Required<NewEvent> {
  /** The stream entry ID, e.g. "1732723123456-0". */
  logId: string;
  /** Milliseconds since the epoch, from the entry ID (Redis' clock). */
  timeMs: number;
}

export interface EventLogLimits {
  maxCount: number;
  maxAgeSeconds: number;
}

/**
 * appendEvent — KEYS[1]: the event stream. ARGV: maxCount, maxAgeMs, then
 * field/value pairs. Appends one event and trims the history by count
 * (approximately: whole stream nodes, cheap) and by age (exactly) in one
 * atomic step, with Redis' clock as the only clock.
 */
const APPEND_EVENT = `
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('XTRIM', KEYS[1], 'MINID', tostring(nowMs - tonumber(ARGV[2])))
return id
`;

/**
 * trimEvents — KEYS[1]: the event stream. ARGV: maxCount, maxAgeMs. Drops
 * events past either limit; run periodically so that age applies without new events.
 */
const TRIM_EVENTS = `
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1])
return redis.call('XTRIM', KEYS[1], 'MINID', tostring(nowMs - tonumber(ARGV[2])))
`;

type EventLogRedis = Redis & {
  appendEvent(key: string, maxCount: number, maxAgeMs: number, ...fields: string[]): Promise<string>;
  trimEvents(key: string, maxCount: number, maxAgeMs: number): Promise<number>;
};

export class EventLog {
  readonly key: string;
  private readonly redis: EventLogRedis;

  constructor(
    redis: Redis,
    prefix: string,
    private readonly limits: EventLogLimits,
  ) {
    this.key = `${prefix}events`;
    redis.defineCommand('appendEvent', { numberOfKeys: 1, lua: APPEND_EVENT });
    redis.defineCommand('trimEvents', { numberOfKeys: 1, lua: TRIM_EVENTS });
    this.redis = redis as EventLogRedis;
  }

  /** Appends an event; resolves to its log ID once Redis has it. */
  append(event: NewEvent): Promise<string> {
    const fields = [
      'type', event.type,
      'action', event.action,
      'id', event.id,
      'from', event.from ?? '',
      'attrs', JSON.stringify(event.attributes ?? {}),
    ];
    return this.redis.appendEvent(this.key, this.limits.maxCount, this.limits.maxAgeSeconds * 1000, ...fields);
  }

  trim(): Promise<number> {
    return this.redis.trimEvents(this.key, this.limits.maxCount, this.limits.maxAgeSeconds * 1000);
  }
}

/** Reads one stream entry back into an event. */
export function decodeEventEntry(logId: string, fields: string[]): LoggedEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  let attributes: Record<string, string> = {};
  try {
    attributes = JSON.parse(f.attrs || '{}');
  } catch {
    // A malformed entry keeps its core fields.
  }
  return {
    logId,
    timeMs: logIdTimeMs(logId),
    type: f.type ?? '',
    action: f.action ?? '',
    id: f.id ?? '',
    from: f.from ?? '',
    attributes,
  };
}

export function logIdTimeMs(logId: string): number {
  return Number(logId.slice(0, logId.indexOf('-')));
}

/** Orders two stream IDs ("ms-seq"): negative, zero or positive. */
export function compareLogIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  if (am.length !== bm.length) return am.length - bm.length;
  if (am !== bm) return am < bm ? -1 : 1;
  const ai = BigInt(as ?? '0');
  const bi = BigInt(bs ?? '0');
  return ai === bi ? 0 : ai < bi ? -1 : 1;
}
