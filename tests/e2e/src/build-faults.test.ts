// The build farm under faults, on a stack of two build workers running one
// build each and a context limit of 1 MiB: a worker SIGKILLed mid-RUN (its
// build taken again), Redis killed mid-build, a client that goes away, two workers sharing four builds, a context over the
// limit, a gzip bomb of a context.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { sleep, type Stack, startStackWithBusybox, stopStack } from './harness';
import { containerNames, context, redisCli } from './build-fixtures';

describe('the build farm under faults', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox({ STEVEDORE_BUILD_WORKERS: '2', STEVEDORE_BUILD_CONCURRENCY: '1', STEVEDORE_BUILD_CONTEXT_MAX: String(1024 * 1024) });
  });
  after(() => stopStack(stack, { allowRestarts: true }));

  const redis = (...args: string[]) => redisCli(stack, ...args);

  /** Waits until no container is left; fails after `ms`. */
  async function noContainersWithin(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while ((await containerNames(stack)).length) {
      if (Date.now() > deadline) assert.deepEqual(await containerNames(stack), [], `containers left after ${ms} ms`);
      await sleep(250);
    }
  }

  test('SIGKILL of the worker in the middle of a RUN: the build starts again on a worker alive, the client is told, no container of the first run stays', async () => {
    const dir = context({ Dockerfile: 'FROM busybox\nRUN echo first\nRUN echo started; sleep 4\n' });
    const build = stack.docker(['build', '--force-rm', dir], { timeoutMs: 90_000 });
    for (let i = 0; i < 100 && !(await containerNames(stack)).some((n) => n.endsWith('_2')); i++) await sleep(100);
    const runs = redis('hvals', 'stevedore:builds:running').trim().split('\n').filter(Boolean);
    assert.equal(runs.length, 1, 'one build is running');
    // A worker's ID: host:pid:nonce.
    const pid = Number(/:(\d+):/.exec((JSON.parse(runs[0]) as { worker: string }).worker)![1]);
    process.kill(pid, 'SIGKILL');
    const result = await build;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /worker \S+ running this build stopped: the build starts again from its first step on worker \S+/);
    assert.equal((result.stdout.match(/Step 0 : FROM busybox/g) ?? []).length, 2, 'the client sees the build from its start again');
    assert.match(result.stdout, /Successfully built/);
    await noContainersWithin(20_000);
    assert.equal(redis('scard', 'stevedore:build-orphans:').trim(), '0', 'the first run\'s containers were removed');
  });

  test('Redis killed and started again in the middle of a RUN: the build is delayed, not lost', async () => {
    const dir = context({ Dockerfile: 'FROM busybox\nRUN echo before; sleep 4; echo after\nRUN echo next\n' });
    const build = stack.docker(['build', dir], { timeoutMs: 120_000 });
    for (let i = 0; i < 100 && !(await containerNames(stack)).some((n) => n.endsWith('_1')); i++) await sleep(100);
    process.kill(stack.state().processes.find((p) => p.name === 'redis')!.pid!, 'SIGKILL');
    const result = await build;
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /Successfully built/);
    assert.match(result.stdout, /after\n/);
    await noContainersWithin(20_000);
  });

  test('a client that goes away stops its build, which leaves nothing', async () => {
    const dir = context({ Dockerfile: 'FROM busybox\nRUN echo started; sleep 60\n' });
    const child = spawn('docker', ['build', dir], { env: { ...process.env, DOCKER_HOST: stack.dockerHost, DOCKER_BUILDKIT: '0' }, stdio: 'ignore' });
    for (let i = 0; i < 100 && (await containerNames(stack)).length === 0; i++) await sleep(100);
    assert.equal((await containerNames(stack)).length, 1, 'the RUN container runs');
    child.kill('SIGKILL');
    await noContainersWithin(15_000);
    assert.equal(redis('hlen', 'stevedore:builds:running').trim(), '0');
  });

  test('two workers share four builds: all succeed, each step runs once', async () => {
    // Events are kept by the second: start at a second of our own.
    const since = Math.ceil(Date.now() / 1000);
    await sleep(since * 1000 - Date.now() + 20);
    const builds = await Promise.all(
      [1, 2, 3, 4].map((n) => stack.docker(['build', '-t', `crew/farm:${n}`, context({ Dockerfile: `FROM busybox\nRUN echo build-${n} > /n; sleep 1\nENV N ${n}\n` })], { timeoutMs: 120_000 })),
    );
    for (const [i, b] of builds.entries()) {
      assert.equal(b.code, 0, b.stderr);
      assert.equal((b.stdout.match(/Running in/g) ?? []).length, 2, `build ${i + 1}: one container per step`);
      assert.equal((await stack.docker(['run', '--rm', `crew/farm:${i + 1}`, 'cat', '/n'])).stdout, `build-${i + 1}\n`);
    }
    const events = (await stack.request('GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000) + 1}`)).text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const count = (status: string) => events.filter((e) => e.status === status).length;
    assert.equal(count('create'), 4 * 2 + 4, 'two intermediate containers per build, and the four runs');
    assert.equal(count('destroy'), 4 * 2 + 4, 'every intermediate container removed (rm), and the four runs');
    assert.equal(count('tag'), 4, 'each built image tagged');
    const workers = ['build-worker', 'build-worker-2'].map((name) => fs.readFileSync(path.join(stack.root, 'logs', `${name}.log`), 'utf8').split('\n').filter((l) => l.includes('"msg":"built"')).length);
    assert.ok(workers.every((n) => n >= 1), `both workers built (${workers})`);
    await noContainersWithin(5000);

    // The same Dockerfile twice at once: both build (names never collide), and a third build is all cache.
    const same = context({ Dockerfile: 'FROM busybox\nRUN echo twin > /twin\nCMD ["cat", "/twin"]\n' });
    const twins = await Promise.all([1, 2].map(() => stack.docker(['build', same], { timeoutMs: 120_000 })));
    for (const t of twins) assert.equal(t.code, 0, t.stderr);
    const third = await stack.docker(['build', same], { timeoutMs: 60_000 });
    assert.equal((third.stdout.match(/Using cache/g) ?? []).length, 2, third.stdout);
    assert.ok(twins.some((t) => t.stdout.includes(/Successfully built ([0-9a-f]{12})/.exec(third.stdout)![1])), 'the cache holds one of the twins');
    await noContainersWithin(5000);
  });

  test('a context larger than the limit ends the build with a clear error and leaves nothing', async () => {
    const big = context({ Dockerfile: 'FROM busybox\n', 'big.bin': Buffer.alloc(2 * 1024 * 1024, 7) });
    const r = await stack.docker(['build', big], { timeoutMs: 60_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /larger than the limit of 1048576 bytes/);
    const blobs = () => fs.readdirSync(path.join(stack.root, 'images', 'blobs')).filter((f) => !f.startsWith('.'));
    for (let i = 0; i < 50 && (fs.readdirSync(path.join(stack.root, 'builds')).length || blobs().length); i++) await sleep(100);
    assert.deepEqual(fs.readdirSync(path.join(stack.root, 'builds')), [], 'no context left on the worker');
    assert.deepEqual(blobs(), [], 'no context left in the blob store');
    assert.equal(redis('--scan', '--pattern', '*:context').trim(), '', 'no context left in Redis');
  });

  test('a gzip bomb of a context (a few KiB that inflate past the limit) is cut at the limit, not inflated whole', async () => {
    const dir = context({ Dockerfile: 'FROM busybox\n', 'zeros.bin': Buffer.alloc(64 * 1024 * 1024) });
    const bomb = zlib.gzipSync(execFileSync('tar', ['-C', dir, '-cf', '-', '.'], { maxBuffer: 128 * 1024 * 1024 }), { level: 9 });
    assert.ok(bomb.length < 128 * 1024, `the bomb is small (${bomb.length} bytes)`);
    const r = await stack.request('POST', '/v1.12/build?t=bomb', { headers: { 'Content-Type': 'application/tar' }, body: bomb });
    assert.match(r.text, /larger than the limit of 1048576 bytes/);
    assert.equal((await stack.request('GET', '/v1.12/images/bomb/json')).status, 404, 'no image');
    for (let i = 0; i < 50 && fs.readdirSync(path.join(stack.root, 'builds')).length; i++) await sleep(100);
    assert.deepEqual(fs.readdirSync(path.join(stack.root, 'builds')), [], 'no context left on the worker');
    assert.equal((await stack.request('GET', '/_ping')).status, 200);
  });
});
