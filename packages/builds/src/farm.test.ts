// The runs of builds against a real Redis: a claim after a run that stopped
// (its containers handed to its node, the attempt counted), the fence that
// keeps a late worker's output out of the run that replaced it, the release
// that only the holder can make, and which worker may run which build.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRedis, startScratchRedis, type Redis, type ScratchRedis } from '@stevedore/redis';
import { BuildKeys, BuildQueues, BuildRuns, mayRun, NoNodeForBuild, OutputWriter, readOutput, type OutputEntry } from './index';

let server: ScratchRedis;
let redis: Redis;
const keys = new BuildKeys('farm:');
let runs: BuildRuns;

before(async () => {
  server = await startScratchRedis('builds-farm');
  redis = connectRedis(server.url);
  runs = new BuildRuns(redis, keys);
});

after(() => {
  redis.disconnect();
  server.stop();
});

async function output(buildId: string): Promise<OutputEntry[]> {
  const read: OutputEntry[] = [];
  for await (const batch of readOutput(redis, keys, buildId, AbortSignal.timeout(2000))) read.push(...batch);
  return read;
}

test('a claim after a stopped run: the attempt counted, that run given back, its containers handed to its node', async () => {
  const first = await runs.claim('b1', 'node-1/host:1', 'node-1');
  assert.equal(first.run.attempt, 1);
  assert.equal(first.previous, undefined);
  await redis.sadd(keys.containers('b1'), 'build_b1_1', 'build_b1_2');
  const second = await runs.claim('b1', 'node-2/host:2', 'node-2');
  assert.deepEqual(second.run, { worker: 'node-2/host:2', node: 'node-2', attempt: 2 });
  assert.deepEqual(second.previous, first.run);
  assert.deepEqual((await redis.smembers(keys.orphans('node-1'))).sort(), ['build_b1_1', 'build_b1_2']);
  assert.equal(await redis.exists(keys.containers('b1')), 0, "the new run's records start empty");
  assert.equal(await runs.release('b1', first.fence), false, 'the stopped run cannot release what the new one holds');
  assert.equal((await runs.all()).get('b1')?.run.attempt, 2);
  assert.equal(await runs.release('b1', second.fence), true);
  assert.equal((await runs.all()).has('b1'), false);
});

test("a late worker's output is refused once another run holds the build; the holder's goes on", async () => {
  const old = await runs.claim('b2', 'w1', 'node-1');
  let lost = 0;
  const late = new OutputWriter(runs, 'b2', old.fence, () => lost++);
  await late.write({ kind: 'out', text: 'Step 0 : FROM busybox\n' });
  await new Promise((r) => setImmediate(r));
  const now = await runs.claim('b2', 'w2', 'node-2');
  await late.write({ kind: 'out', text: 'from the old run\n' });
  await assert.rejects(late.write({ kind: 'done', text: 'old-image' }), /another run holds this build/);
  assert.equal(lost, 1);
  const holder = new OutputWriter(runs, 'b2', now.fence, () => assert.fail('the holder is not fenced off'));
  await holder.write({ kind: 'done', text: 'new-image' });
  assert.deepEqual(await output('b2'), [{ kind: 'out', text: 'Step 0 : FROM busybox\n' }, { kind: 'done', text: 'new-image' }]);
  assert.ok((await redis.ttl(keys.output('b2'))) > 0, 'an ended output expires');
});

test("orphan(): a dead worker's containers go to its node at once; its record stays for the next claim", async () => {
  await runs.claim('b3', 'w3', 'node-3');
  await redis.sadd(keys.containers('b3'), 'build_b3_1');
  const held = (await runs.all()).get('b3')!.fence;
  assert.equal(await runs.orphan('b3', 'an older run'), 0, 'not while another run holds it');
  assert.equal(await runs.orphan('b3', held), 1);
  assert.deepEqual(await redis.smembers(keys.orphans('node-3')), ['build_b3_1']);
  assert.equal((await runs.claim('b3', 'w4', 'node-1')).previous?.worker, 'w3');
  assert.equal(await runs.orphan('nothing', ''), 0);
});

test('mayRun: constraints on the node name and labels, preferences ignored, the platform by OS and architecture', () => {
  const w = { node: 'node-2', labels: { storage: 'ssd' }, platform: 'linux/amd64' };
  const job = (constraints: string[], platform = '') => ({ constraints, platform });
  assert.equal(mayRun(w, job([])), true);
  assert.equal(mayRun(w, job(['storage==ssd', 'node==node-*'])), true);
  assert.equal(mayRun(w, job(['storage==disk'])), false);
  assert.equal(mayRun(w, job(['node!=node-2'])), false);
  assert.equal(mayRun(w, job(['storage==~disk'])), true, 'a preference does not bind');
  assert.equal(mayRun(w, job(['gpu==yes'])), false, 'a label the node lacks');
  assert.equal(mayRun(w, job([], 'linux/amd64')), true);
  assert.equal(mayRun(w, job([], 'linux')), true);
  assert.equal(mayRun(w, job([], 'LINUX/AMD64/v3')), true);
  assert.equal(mayRun(w, job([], 'linux/arm64')), false);
  assert.equal(mayRun(w, job([], 'windows/amd64')), false);
});

test('release: the names of containers its run could not remove go to its node; output appended in parts of any size', async () => {
  const c = await runs.claim('b4', 'w5', 'node-5');
  await redis.sadd(keys.containers('b4'), 'build_b4_7');
  assert.equal(await runs.release('b4', c.fence), true);
  assert.deepEqual(await redis.smembers(keys.orphans('node-5')), ['build_b4_7']);
  assert.equal(await redis.exists(keys.containers('b4')), 0);

  const d = await runs.claim('b5', 'w6', 'node-6');
  const many: OutputEntry[] = Array.from({ length: 5000 }, (_, i) => ({ kind: 'out', text: `${i}\n` }));
  assert.equal(await runs.append('b5', d.fence, [...many, { kind: 'done', text: 'img' }]), true);
  const read = await output('b5');
  assert.equal(read.length, 5001);
  assert.deepEqual(read.at(-1), { kind: 'done', text: 'img' });
});

test('a build queued elsewhere since: the copy left in the queue it was in is stale; the queue holding it is known', async () => {
  const queues = new BuildQueues(redis, redis, keys);
  const job = { buildId: 'b6', remote: '', tag: '', quiet: false, nocache: false, rm: true, forcerm: false, heldCredentials: '', requestId: 'r', constraints: [], platform: '' };
  try {
    assert.equal(await queues.add(job), '');
    assert.equal(await queues.stale('b6', ''), false);
    assert.equal(await queues.holds('b6'), true);
    await queues.add({ ...job, handedTo: 'node-2' }, 'node-2');
    assert.equal(await queues.stale('b6', ''), true, 'the shared copy is stale');
    assert.equal(await queues.stale('b6', 'node-2'), false);
    await (await queues.queue('node-2').getJob('b6'))!.remove();
    assert.equal(await queues.holds('b6'), false, 'node-2 held it, and does not any more');
    await queues.ended('b6');
    assert.equal(await queues.stale('b6', ''), false);
    await assert.rejects(queues.add({ ...job, buildId: 'b7', constraints: ['node==nowhere'] }), NoNodeForBuild);
  } finally {
    await queues.close();
  }
});
