// The shared Redis: a REDIS_URL instead of the private one, prefixes that
// keep two stacks apart on one Redis, and the history's caps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { connectRedis, EventLog, type Redis } from '@stevedore/redis';
import { freePort, REPO, runCommand, shortTempDir, sleep, startStack, startStackWithBusybox, stopStack, type Stack } from './harness';

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

describe("the multi-host shape's Redis (infra/redis.conf): TLS and a password", () => {
  let dir: string;
  let server: ChildProcess;
  let port: number;

  before(async () => {
    dir = shortTempDir('redistls-');
    assert.equal((await runCommand('bash', [path.join(REPO, 'infra', 'gen-certs.sh'), dir])).code, 0);
    port = await freePort();
    // infra/redis.conf as shipped; only the paths and the port are this test's.
    server = spawn('redis-server', [path.join(REPO, 'infra', 'redis.conf'), '--tls-port', String(port), '--tls-cert-file', path.join(dir, 'redis.pem'), '--tls-key-file', path.join(dir, 'redis-key.pem'), '--tls-ca-cert-file', path.join(dir, 'ca.pem'), '--requirepass', 'marker-pw-5dd1', '--dir', dir, '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if ((await runCommand('redis-cli', ['--tls', '--cacert', path.join(dir, 'ca.pem'), '-p', String(port), '--no-auth-warning', '-a', 'marker-pw-5dd1', 'ping'])).stdout.includes('PONG')) break;
      await sleep(50);
    }
  });
  after(async () => {
    server?.kill('SIGTERM');
    await sleep(200);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the services reach it by rediss:// with the password; without either they are refused', async () => {
    const ca = path.join(dir, 'ca.pem');
    const plain = await runCommand('redis-cli', ['-p', String(port), 'ping']);
    assert.ok(!plain.stdout.includes('PONG'), 'plain TCP is not served');
    const noAuth = await runCommand('redis-cli', ['--tls', '--cacert', ca, '-p', String(port), 'ping']);
    assert.match(noAuth.stdout + noAuth.stderr, /NOAUTH/);
    const stack = await startStackWithBusybox({ REDIS_URL: `rediss://:marker-pw-5dd1@127.0.0.1:${port}`, NODE_EXTRA_CA_CERTS: ca, STEVEDORE_REDIS_PREFIX: 'tls:' });
    try {
      const ran = await stack.docker(['run', '--rm', 'busybox', 'echo', 'over-tls']);
      assert.equal(ran.stdout.trim(), 'over-tls', ran.stderr);
      const keys = await runCommand('redis-cli', ['--tls', '--cacert', ca, '-p', String(port), '--no-auth-warning', '-a', 'marker-pw-5dd1', '--scan', '--pattern', 'tls:*']);
      assert.match(keys.stdout, /tls:events/, 'the stack wrote its events there');
    } finally {
      await stopStack(stack);
    }
  });

  test('up refuses a TCP REDIS_URL without a password, and one off this host without TLS', async () => {
    for (const [url, message] of [
      [`redis://127.0.0.1:${port}`, /without a password/],
      ['redis://:pw@192.0.2.1:6379', /off this host, without TLS: use rediss/],
    ] as const) {
      await assert.rejects(startStack({ REDIS_URL: url }), message);
    }
  });
});
