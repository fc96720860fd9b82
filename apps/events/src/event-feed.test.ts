// The feed against a real Redis (a private redis-server on a unix socket):
// its logic is the stream's semantics, cursors, XRANGE and a blocked XREAD.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@stevedore/logging';
import { connectRedis, EventLog, startScratchRedis, type LoggedEvent, type Redis, type ScratchRedis } from '@stevedore/redis';
import { EventFeed, type Subscription } from './event-feed';
import { subscriptionWindow } from './events.rpc';

let server: ScratchRedis;
const opened: Redis[] = [];
const started: EventFeed[] = [];

before(async () => {
  server = await startScratchRedis('event-feed');
});

after(async () => {
  await Promise.all(started.map((feed) => feed.stop()));
  for (const r of opened) r.disconnect();
  server.stop();
});


/** A started feed over a log of its own, and a connection to write to that log. */
async function feedOf(): Promise<{ feed: EventFeed; log: EventLog; writer: Redis }> {
  const redis = connectRedis(server.url);
  const tail = connectRedis(server.url, { enableAutoPipelining: false });
  const writer = connectRedis(server.url);
  opened.push(redis, writer);
  const prefix = `feed${started.length}:`;
  const feed = new EventFeed({ log: new EventLog(redis, prefix, { maxCount: 10_000, maxAgeSeconds: 3600 }), redis, tail }, createLogger('test', 'silent'));
  started.push(feed);
  return { feed, log: new EventLog(writer, prefix, { maxCount: 10_000, maxAgeSeconds: 3600 }), writer };
}

/** An event written at a chosen log position (the log's own appends take Redis' clock). */
const writeAt = (writer: Redis, log: EventLog, logId: string, id: string) => writer.xadd(log.key, logId, 'type', 'container', 'action', 'start', 'id', id, 'from', '', 'attrs', '{}');

/** A subscriber that collects what it is given; `deliver` may hold it back. */
function subscribe(feed: EventFeed, window: Pick<Subscription, 'cursor' | 'endMs' | 'closeMs'>, deliver: (event: LoggedEvent) => Promise<void> | undefined = () => undefined) {
  const controller = new AbortController();
  const got: string[] = [];
  const done = feed.follow({
    ...window,
    signal: controller.signal,
    deliver: (event) => {
      got.push(event.id);
      return deliver(event);
    },
  });
  return { got, done, cancel: () => controller.abort() };
}

async function until(what: () => boolean, message: string, timeoutMs = 3000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !what(); ) {
    if (Date.now() > end) assert.fail(`timed out waiting: ${message}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const live = (feed: EventFeed) => subscriptionWindow({ since: 0, until: 0, afterLogId: '' }, feed.now);

test('live events reach every subscriber in the order of the log, once; cancelling ends a subscription', async () => {
  const { feed, log } = await feedOf();
  await log.append({ type: 'container', action: 'create', id: 'before' });
  await feed.start();
  const a = subscribe(feed, live(feed));
  const b = subscribe(feed, live(feed));
  assert.equal(feed.listeners, 2);
  const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
  for (const id of ids) await log.append({ type: 'container', action: 'start', id });
  await until(() => a.got.length >= 20 && b.got.length >= 20, 'every live event');
  assert.deepEqual(a.got, ids, 'an event from before the subscription is not replayed');
  assert.deepEqual(b.got, ids);
  a.cancel();
  await a.done;
  assert.equal(feed.listeners, 1);
  await log.append({ type: 'container', action: 'die', id: 'later' });
  await until(() => b.got.length === 21, 'the event after one subscriber left');
  assert.deepEqual(a.got, ids);
  assert.equal(await feed.historyLength(), 22);
  b.cancel();
  await b.done;
});

test('since and until replay the history of their seconds; a past until ends the stream after the replay', async () => {
  const { feed, log, writer } = await feedOf();
  const s = Math.floor(Date.now() / 1000) - 100;
  for (const [ms, id] of [[(s - 1) * 1000 + 999, 'before-since'], [s * 1000, 'at-since'], [s * 1000 + 500, 'in-since'], [(s + 1) * 1000 + 999, 'end-of-until'], [(s + 2) * 1000, 'after-until']] as const) {
    await writeAt(writer, log, `${ms}-0`, id);
  }
  await feed.start();

  const bounded = subscribe(feed, subscriptionWindow({ since: s, until: s + 1, afterLogId: '' }, feed.now));
  await bounded.done;
  assert.deepEqual(bounded.got, ['at-since', 'in-since', 'end-of-until']);

  const since = subscribe(feed, subscriptionWindow({ since: s + 1, until: 0, afterLogId: '' }, feed.now));
  await until(() => since.got.length === 2, 'the replay');
  await log.append({ type: 'container', action: 'start', id: 'live' });
  await until(() => since.got.length === 3, 'the live event after the replay');
  assert.deepEqual(since.got, ['end-of-until', 'after-until', 'live']);
  since.cancel();
  await since.done;

  const resumed = subscribe(feed, subscriptionWindow({ since: 0, until: 0, afterLogId: `${s * 1000}-0` }, feed.now));
  await until(() => resumed.got.length === 4, 'the events after the position');
  assert.equal(resumed.got[0], 'in-since', 'a resumed stream starts after its position');
  resumed.cancel();
  await resumed.done;
});

test('an until in the future closes the stream when the clock reaches it, events or not', async () => {
  const { feed, log } = await feedOf();
  await feed.start();
  const started = Date.now();
  const quiet = subscribe(feed, { cursor: feed.now, endMs: Infinity, closeMs: started + 300 });
  await quiet.done;
  assert.ok(Date.now() - started >= 280, 'not before the time');
  assert.deepEqual(quiet.got, []);

  const ending = subscribe(feed, { cursor: feed.now, endMs: Date.now() + 200, closeMs: Infinity });
  await log.append({ type: 'container', action: 'start', id: 'inside' });
  await until(() => ending.got.length === 1, 'the event inside the window');
  await new Promise((r) => setTimeout(r, 250));
  await log.append({ type: 'container', action: 'start', id: 'outside' });
  await ending.done;
  assert.deepEqual(ending.got, ['inside'], 'an event past the end ends the stream and is not delivered');
  assert.equal(feed.listeners, 0);
});

test('a slow subscriber holds nobody back, then catches up from the log with nothing lost or repeated', async () => {
  const { feed, log } = await feedOf();
  await feed.start();
  let drain!: () => void;
  const drained = new Promise<void>((resolve) => (drain = resolve));
  let full = true;
  const slow = subscribe(feed, live(feed), () => (full ? ((full = false), drained) : undefined));
  const fast = subscribe(feed, live(feed));
  const first = Array.from({ length: 10 }, (_, i) => `e${i}`);
  for (const id of first) await log.append({ type: 'container', action: 'start', id });
  await until(() => fast.got.length === 10, 'the fast subscriber\'s events');
  assert.deepEqual(slow.got, ['e0'], 'the full subscriber is given nothing more until it drains');

  drain();
  await until(() => slow.got.length === 10, 'the catch-up');
  const later = ['f0', 'f1'];
  for (const id of later) await log.append({ type: 'container', action: 'start', id });
  await until(() => slow.got.length === 12 && fast.got.length === 12, 'live again');
  assert.deepEqual(slow.got, [...first, ...later]);
  assert.deepEqual(fast.got, [...first, ...later]);
  slow.cancel();
  fast.cancel();
  await Promise.all([slow.done, fast.done]);
});

test('events written while a subscriber replays a long history are neither lost nor repeated at the seam', async () => {
  const { feed, log } = await feedOf();
  const history = Array.from({ length: 600 }, (_, i) => `h${i}`);
  for (const id of history) await log.append({ type: 'container', action: 'start', id });
  await feed.start();
  const reader = subscribe(feed, { cursor: '0-0', endMs: Infinity, closeMs: Infinity }, () => new Promise((r) => setImmediate(r)));
  const during = Array.from({ length: 300 }, (_, i) => `d${i}`);
  for (const id of during) await log.append({ type: 'container', action: 'start', id });
  await until(() => reader.got.length >= 900, 'every event', 10_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(reader.got, [...history, ...during]);
  reader.cancel();
  await reader.done;
});
