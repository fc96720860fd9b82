// GET /events: what a service publishes reaches the stream; since/until
// replay exactly its window; nothing is lost or repeated at the seam between
// history and live events, and a slow reader loses nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { connectRedis, EventLog, type Redis } from '@stevedore/redis';
import { sleep, startStack, stopStack, type Stack } from './harness';

const hex = () => randomBytes(32).toString('hex');

/** Waits until the wall clock enters a new second; returns that second. */
async function nextSecond(): Promise<number> {
  const now = Date.now();
  await sleep(1000 - (now % 1000) + 20);
  return Math.floor(Date.now() / 1000);
}

/** Reads an /events answer; `onFirstChunk` may delay reading (a slow reader). */
function readEvents(stack: Stack, query: string, opts: { pauseMs?: number; onOpen?: () => void; stopAt?: (e: any) => boolean } = {}): Promise<{ status: number; events: any[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: stack.socket, path: `/v1.12/events${query}`, agent: false }, (res) => {
      opts.onOpen?.();
      let partial = '';
      const events: any[] = [];
      let done = false;
      if (opts.pauseMs) {
        res.pause();
        setTimeout(() => res.resume(), opts.pauseMs);
      }
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        const lines = (partial + d).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line) events.push(JSON.parse(line));
        // Ends on a marker event rather than on the clock: a loaded machine publishes slowly.
        if (!done && opts.stopAt && lines.some((l) => l && opts.stopAt!(JSON.parse(l)))) {
          done = true;
          req.destroy();
          resolve({ status: res.statusCode ?? 0, events });
        }
      });
      res.on('end', () => {
        if (partial) events.push(JSON.parse(partial));
        if (!done) resolve({ status: res.statusCode ?? 0, events });
      });
    });
    req.on('error', (err) => (opts.stopAt ? undefined : reject(err)));
  });
}

describe('events', () => {
  let stack: Stack;
  let redis: Redis;
  let log: EventLog;

  before(async () => {
    stack = await startStack();
    // The same event log every service publishes through (@stevedore/redis).
    redis = connectRedis(`unix://${path.join(stack.root, 'run', 'redis.sock')}`);
    log = new EventLog(redis, 'stevedore:', { maxCount: 1_000_000, maxAgeSeconds: 3600 });
  });
  after(async () => {
    redis?.disconnect();
    await stopStack(stack);
  });

  const publish = (action: string, id = hex(), attributes: Record<string, string> = {}) =>
    log.append({ type: 'container', action, id, from: 'busybox', attributes: { image: 'busybox', name: 'web', ...attributes } }).then(() => id);

  test('a published event reaches a live GET /events stream, in the v1.12 shape and the modern keys', async () => {
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const until = Math.floor(Date.now() / 1000) + 2;
    const reading = readEvents(stack, `?until=${until}`, { onOpen: opened });
    await open; // headers arrive before any event
    const id = await publish('die', undefined, { exitCode: '3' });
    const { status, events } = await reading;
    // The response ends when the clock reaches `until`, as Docker 1.0's did.
    const ended = Date.now();
    assert.ok(ended >= until * 1000 - 50 && ended < until * 1000 + 500, `ended ${ended - until * 1000} ms after until`);
    assert.equal(status, 200);
    assert.equal(events.length, 1);
    const e = events[0];
    assert.deepEqual(Object.keys(e).slice(0, 4), ['status', 'id', 'from', 'Type']);
    assert.equal(e.status, 'die');
    assert.equal(e.id, id);
    assert.equal(e.from, 'busybox');
    assert.equal(typeof e.time, 'number');
    assert.equal(e.Type, 'container');
    assert.equal(e.Action, 'die');
    assert.equal(e.Actor.ID, id);
    assert.equal(e.Actor.Attributes.exitCode, '3');
    assert.equal(Math.floor(e.timeNano / 1e9), e.time);
  });

  test('since/until replay exactly the events of their window, and the response ends', async () => {
    const s0 = await nextSecond();
    const a = await publish('create');
    const s1 = await nextSecond();
    const b = await publish('start');
    const c = await publish('die');
    const s2 = await nextSecond();
    const d = await publish('destroy');
    await sleep(1100);

    const window = await readEvents(stack, `?since=${s1}&until=${s1}`);
    assert.deepEqual(window.events.map((e) => e.id), [b, c]);
    const wider = await readEvents(stack, `?since=${s0}&until=${s2}`);
    assert.deepEqual(wider.events.map((e) => e.id).filter((id) => [a, b, c, d].includes(id)), [a, b, c, d]);
    // Today's CLI sends dates as fractional seconds.
    const fractional = await readEvents(stack, `?since=${s1}.000000000&until=${s1}.999999999`);
    assert.deepEqual(fractional.events.map((e) => e.id), [b, c]);

    const cli = await stack.docker(['events', '--since', String(s1), '--until', String(s1)], { timeoutMs: 20_000 });
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0], new RegExp(`container start ${b}`));
    assert.match(lines[1], new RegExp(`container die ${c}`));
  });

  test('filters select by container and type, as docker run relies on', async () => {
    const since = Math.floor(Date.now() / 1000);
    const mine = await publish('start');
    await publish('start');
    await log.append({ type: 'image', action: 'untag', id: mine });
    await sleep(1100);
    const filters = encodeURIComponent(JSON.stringify({ container: [mine], type: ['container'] }));
    const r = await readEvents(stack, `?since=${since}&until=${since + 1}&filters=${filters}`);
    assert.deepEqual(r.events.map((e) => [e.Type, e.id]), [['container', mine]]);
  });

  test('no event is lost or repeated at the seam between history and live', async () => {
    const since = Math.floor(Date.now() / 1000);
    const total = 3000;
    const run = hex().slice(0, 12);
    const publishing = (async () => {
      for (let i = 0; i < total; i++) await publish('start', undefined, { seq: String(i), run });
    })();
    await sleep(100); // subscribe while the history is growing
    const filters = encodeURIComponent(JSON.stringify({ event: ['start', 'seam-end'] }));
    const reading = readEvents(stack, `?since=${since}&filters=${filters}`, { stopAt: (e) => e.status === 'seam-end' && e.Actor.Attributes.run === run });
    await publishing;
    await publish('seam-end', undefined, { run });
    const { events } = await reading;
    const seqs = events.filter((e) => e.Actor.Attributes.run === run && e.status === 'start').map((e) => Number(e.Actor.Attributes.seq));
    assert.equal(seqs.length, total);
    seqs.forEach((s, i) => assert.equal(s, i));
  });

  test('a since beyond what the event log can hold is refused at once, not retried', async () => {
    const started = Date.now();
    const r = await stack.request('GET', '/v1.12/events?since=20000000000000000');
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /since and until must be times the event log can hold/);
    assert.ok(Date.now() - started < 2000);
  });

  test('a slow reader of the live stream loses nothing (back-pressure, not drops)', async () => {
    const total = 20_000;
    const run = hex().slice(0, 12);
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const filters = encodeURIComponent(JSON.stringify({ event: ['slow', 'slow-end'] }));
    const reading = readEvents(stack, `?filters=${filters}`, { pauseMs: 3000, onOpen: opened, stopAt: (e) => e.status === 'slow-end' && e.Actor.Attributes.run === run });
    await open;
    await Promise.all(Array.from({ length: total }, (_, i) => publish('slow', undefined, { seq: String(i), run })));
    await publish('slow-end', undefined, { run });
    const info = JSON.parse((await stack.request('GET', '/info')).text);
    assert.ok(info.NEventsListener >= 1, 'the open stream is counted');
    const { events } = await reading;
    const seqs = events.filter((e) => e.Actor.Attributes.run === run && e.status === 'slow').map((e) => Number(e.Actor.Attributes.seq));
    assert.equal(seqs.length, total);
    assert.equal(new Set(seqs).size, total);
  });
});

describe('events across a restart of the events service', () => {
  let stack: Stack;
  let redis: Redis;
  before(async () => {
    stack = await startStack();
    redis = connectRedis(`unix://${path.join(stack.root, 'run', 'redis.sock')}`);
  });
  after(async () => {
    redis?.disconnect();
    await stopStack(stack, { allowRestarts: true });
  });

  test('a live GET /events stream goes on over a SIGKILL of the events service: nothing lost, nothing repeated', async () => {
    const log = new EventLog(redis, 'stevedore:', { maxCount: 1_000_000, maxAgeSeconds: 3600 });
    const run = hex().slice(0, 12);
    const publish = (action: string, attributes: Record<string, string>) => log.append({ type: 'container', action, id: hex(), from: 'busybox', attributes: { run, ...attributes } });
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const filters = encodeURIComponent(JSON.stringify({ event: ['tick', 'tick-end'] }));
    const reading = readEvents(stack, `?filters=${filters}`, { onOpen: opened, stopAt: (e) => e.status === 'tick-end' && e.Actor.Attributes.run === run });
    await open;
    const before = stack.process('events').pid!;
    for (let i = 0; i < 300; i++) {
      await publish('tick', { seq: String(i) });
      if (i === 100) process.kill(before, 'SIGKILL');
      await sleep(5);
    }
    await publish('tick-end', {});
    const { events } = await reading;
    const seqs = events.filter((e) => e.Actor.Attributes.run === run && e.status === 'tick').map((e) => Number(e.Actor.Attributes.seq));
    assert.deepEqual(seqs, Array.from({ length: 300 }, (_, i) => i), 'every event once, in order, on the same response');
    assert.notEqual(stack.process('events').pid, before, 'the service was restarted meanwhile');
  });
});
