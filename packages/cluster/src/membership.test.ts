// Membership against a real Redis: joins, beats, a name held by a live node,
// expiry as a node's death, leaving.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRedis, startScratchRedis, type Redis, type ScratchRedis } from '@stevedore/redis';
import { Membership, type NodeRecord } from './membership';

let server: ScratchRedis;
let redis: Redis;

before(async () => {
  server = await startScratchRedis('membership');
  redis = connectRedis(server.url);
});

after(() => {
  redis.disconnect();
  server.stop();
});

function record(name: string, address: string): NodeRecord {
  return { name, address, runtime: `${address}:7003`, cpus: 2, memoryBytes: 2 ** 31, labels: { storage: 'ssd' }, joinedAt: new Date().toISOString() };
}

test('a node that joined is up with its counts; one that left is down but still listed', async () => {
  const m = new Membership(redis, 'a:');
  assert.deepEqual(await m.members(), []);
  await m.join(record('n2', '10.0.0.12'), { containers: 0, running: 0, paused: 0 });
  await m.join(record('n1', '10.0.0.11'), { containers: 3, running: 1, paused: 0 });
  await m.beat(record('n1', '10.0.0.11'), { containers: 4, running: 2, paused: 1 });
  const members = await m.members();
  assert.deepEqual(members.map((x) => [x.name, x.up, x.counts.running, x.runtime]), [['n1', true, 2, '10.0.0.11:7003'], ['n2', true, 0, '10.0.0.12:7003']]);
  await m.leave('n2');
  assert.deepEqual((await m.members()).map((x) => [x.name, x.up, x.beatAt]), [['n1', true, members[0].beatAt], ['n2', false, '']]);
});

test('a live node keeps its name: another address is refused until the first one\'s beats stop', async () => {
  const m = new Membership(redis, 'b:', 300);
  await m.join(record('n1', '10.0.0.11'), { containers: 0, running: 0, paused: 0 });
  await assert.rejects(m.join(record('n1', '10.0.0.99'), { containers: 0, running: 0, paused: 0 }), /node name n1 is taken by a live node at 10\.0\.0\.11/);
  // The same node joining again (its runtime restarted) is welcome.
  await m.join(record('n1', '10.0.0.11'), { containers: 0, running: 0, paused: 0 });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal((await m.members())[0].up, false, 'no beat within the alive time: down');
  await m.join(record('n1', '10.0.0.99'), { containers: 0, running: 0, paused: 0 });
  assert.deepEqual((await m.members()).map((x) => [x.address, x.up]), [['10.0.0.99', true]]);
});

test('news of a join reaches subscribers of the channel', async () => {
  const m = new Membership(redis, 'c:');
  const sub = connectRedis(server.url);
  await sub.subscribe(m.channel);
  const heard = new Promise<string>((resolve) => sub.on('message', (_c, name: string) => resolve(name)));
  await m.join(record('n3', '10.0.0.13'), { containers: 0, running: 0, paused: 0 });
  assert.equal(await heard, 'n3');
  sub.disconnect();
});
