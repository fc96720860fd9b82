// Shared steps against a real Redis: the second build to reach a step waits
// for the first and then finds its result in the cache; a holder that dies
// holds the step only until its lease expires; the cache's counts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BuildKeys } from '@stevedore/builds';
import { containerConfigText } from '@stevedore/contracts';
import { connectRedis, startScratchRedis, type Redis, type ScratchRedis } from '@stevedore/redis';
import { BuildCache } from './build-cache';
import { StepLeases } from './step-leases';

let server: ScratchRedis;
let redis: Redis;
const keys = new BuildKeys('leases:');

before(async () => {
  server = await startScratchRedis('step-leases');
  redis = connectRedis(server.url);
});

after(() => {
  redis.disconnect();
  server.stop();
});

/** A cache store where an image appears once `commit` is called. */
function store() {
  const made = new Map<string, string>();
  return {
    made,
    async findCached(parent: string, config: object) {
      return { id: made.get(parent + containerConfigText.encode(config)) ?? '', chain: [] };
    },
  };
}

test('two builds reach the same step: one builds it, the other waits and uses its result', async () => {
  const s = store();
  const said: string[] = [];
  const counts = { hits: 0, misses: 0, waits: 0 };
  const shared = (leases: StepLeases) => ({
    leases,
    signal: new AbortController().signal,
    say: async (t: string) => void said.push(t),
    counts: { hit: () => counts.hits++, miss: () => counts.misses++, waited: () => counts.waits++ },
  });
  const a = new BuildCache(s, false, shared(new StepLeases(redis, keys)));
  const b = new BuildCache(s, false, shared(new StepLeases(redis, keys)));
  const step = { Cmd: ['/bin/sh', '-c', 'make'], Image: 'base' };
  assert.equal(await a.find('base', step), '', 'a misses and holds the step');
  const waiting = b.find('base', step);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(said, [' ---> Waiting for another build that is building this same step\n']);
  s.made.set('base' + containerConfigText.encode(step), 'made-by-a');
  await a.committed();
  assert.equal(await waiting, 'made-by-a');
  assert.deepEqual(counts, { hits: 1, misses: 1, waits: 1 });
  assert.equal(await redis.keys('leases:build-step:*').then((k) => k.length), 0, 'no lease left');
});

test("a step whose builder failed is built by the one that waited; a dead holder's lease expires", async () => {
  const s = store();
  const noisy = (leases: StepLeases) => ({ leases, signal: new AbortController().signal, say: async () => undefined, counts: { hit() {}, miss() {}, waited() {} } });
  const step = { Cmd: ['/bin/sh', '-c', 'false'], Image: 'base' };
  const failing = new BuildCache(s, false, noisy(new StepLeases(redis, keys)));
  const other = new BuildCache(s, false, noisy(new StepLeases(redis, keys)));
  assert.equal(await failing.find('base', step), '');
  const waiting = other.find('base', step);
  await failing.stepEnded();
  assert.equal(await waiting, '', 'nothing was made: the waiter builds it');
  await other.stepEnded();

  const dying = new StepLeases(redis, keys, 600);
  const survivor = new BuildCache(s, false, noisy(new StepLeases(redis, keys, 600)));
  const dead = new BuildCache(s, false, noisy(dying));
  const step2 = { Cmd: ['/bin/sh', '-c', 'sleep'], Image: 'base' };
  assert.equal(await dead.find('base', step2), '');
  dying.abandon();
  const t0 = Date.now();
  assert.equal(await survivor.find('base', step2), '');
  const waited = Date.now() - t0;
  assert.ok(waited >= 400 && waited < 3000, `waited ${waited} ms for the dead holder's lease`);
  await survivor.stepEnded();
});

test('after its own commit a build still finds the step another build made on top of it meanwhile', async () => {
  const s = store();
  const quiet = { leases: new StepLeases(redis, keys), signal: new AbortController().signal, say: async () => undefined, counts: { hit() {}, miss() {}, waited() {} } };
  const slow = new BuildCache(s, false, quiet);
  await slow.committed(); // it made 'mine'; a faster build took 'mine' from the cache and built the next step
  const next = { Cmd: ['/bin/sh', '-c', 'next'], Image: 'mine' };
  s.made.set('mine' + containerConfigText.encode(next), 'made-by-the-fast-one');
  assert.equal(await slow.find('mine', next), 'made-by-the-fast-one');
});

test('a cancelled build stops waiting', async () => {
  const s = store();
  const holder = new BuildCache(s, false, { leases: new StepLeases(redis, keys), signal: new AbortController().signal, say: async () => undefined, counts: { hit() {}, miss() {}, waited() {} } });
  const step = { Cmd: ['/bin/sh', '-c', 'x'], Image: 'base' };
  await holder.find('base', step);
  const controller = new AbortController();
  const waiter = new BuildCache(s, false, { leases: new StepLeases(redis, keys), signal: controller.signal, say: async () => undefined, counts: { hit() {}, miss() {}, waited() {} } });
  const waiting = waiter.find('base', step);
  setTimeout(() => controller.abort(), 300);
  await assert.rejects(waiting, /cancelled/);
  await holder.stepEnded();
});
