// The shared Redis: a REDIS_URL instead of the private one, prefixes that
// keep two stacks apart on one Redis, and the history's caps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { connectRedis, EventLog, type Redis } from '@stevedore/redis';
import { shortTempDir, sleep, startStack, stopStack, type Stack } from './harness';

function eventsOf(stack: Stack, query: string): Promise<any[]> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: stack.socket, path: `/v1.12/events${query}`, agent: false }, (res) => {
        let buf = '';
        res.on('data', (d) => (buf += d));
        res.on('end', () => resolve(buf.split('\n').filter(Boolean).map((l) => JSON.parse(l))));
      })
      .on('error', reject);
  });
}

describe('an external Redis (REDIS_URL)', () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;
  let redis: Redis;

  before(async () => {
    dir = shortTempDir('redis-');
    const socket = path.join(dir, 'redis.sock');
    server = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    url = `unix://${socket}`;
    for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await sleep(50);
    redis = connectRedis(url);
  });
  after(async () => {
    redis?.disconnect();
    server?.kill('SIGTERM');
    await sleep(200);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('is used instead of a private one, and prefixes keep two stacks apart on it', async () => {
    const a = await startStack({ REDIS_URL: url, STEVEDORE_REDIS_PREFIX: 'a:' });
    const b = await startStack({ REDIS_URL: url, STEVEDORE_REDIS_PREFIX: 'b:' });
    try {
      assert.deepEqual(a.state().processes.map((p) => p.name).sort(), ['api-edge', 'build-worker', 'container-runtime', 'events', 'image-store']);
      assert.ok(!fs.existsSync(path.join(a.root, 'run', 'redis.sock')));
      const since = Math.floor(Date.now() / 1000);
      await new EventLog(redis, 'a:', { maxCount: 1000, maxAgeSeconds: 3600 }).append({ type: 'container', action: 'start', id: 'a'.repeat(64), from: 'x' });
      await sleep(1100);
      const seenByA = await eventsOf(a, `?since=${since}&until=${since + 1}`);
      const seenByB = await eventsOf(b, `?since=${since}&until=${since + 1}`);
      assert.deepEqual(seenByA.map((e) => e.id), ['a'.repeat(64)]);
      assert.deepEqual(seenByB, []);
    } finally {
      await stopStack(a);
      await stopStack(b);
    }
  });

  test('the history is capped by count and by age', async () => {
    const stack = await startStack({ REDIS_URL: url, STEVEDORE_REDIS_PREFIX: 'caps:', STEVEDORE_EVENTS_MAX_COUNT: '50', STEVEDORE_EVENTS_MAX_AGE: '1' });
    try {
      const log = new EventLog(redis, 'caps:', { maxCount: 50, maxAgeSeconds: 1 });
      await Promise.all(Array.from({ length: 1000 }, (_, i) => log.append({ type: 'container', action: 'start', id: String(i).padStart(64, '0') })));
      // Count: approximate trimming keeps at most one stream node (100 entries) beyond the cap.
      assert.ok((await redis.xlen('caps:events')) <= 150);
      await sleep(2100);
      const since = Math.floor(Date.now() / 1000) - 10;
      await log.append({ type: 'container', action: 'die', id: 'f'.repeat(64) });
      // Age: everything older than a second is gone.
      assert.equal(await redis.xlen('caps:events'), 1);
      const info = JSON.parse((await stack.request('GET', '/info')).text);
      assert.equal(info.NEventsListener, 0);
      const replay = await eventsOf(stack, `?since=${since}&until=${Math.floor(Date.now() / 1000)}`);
      assert.deepEqual(replay.map((e) => e.status), ['die']);
    } finally {
      await stopStack(stack);
    }
  });
});
