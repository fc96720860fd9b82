// The container index against a real Redis.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRedis, startScratchRedis, type Redis, type ScratchRedis } from '@stevedore/redis';
import { ContainerIndex } from './container-index';

let server: ScratchRedis;
let redis: Redis;
before(async () => {
  server = await startScratchRedis('container-index');
  redis = connectRedis(server.url);
});
after(() => {
  redis.disconnect();
  server.stop();
});

const id = (c: string) => c.repeat(64);

test('names are unique across nodes; references resolve as Docker resolves them; release frees the name', async () => {
  const x = new ContainerIndex(redis, 'a:');
  assert.equal(await x.claim('/web', id('a'), 'node-1'), undefined);
  assert.equal(await x.claim('/web', id('b'), 'node-2'), id('a'), 'the holder is named');
  assert.equal(await x.claim('/db', id('b'), 'node-2'), undefined);
  assert.deepEqual(await x.locate('web'), { id: id('a'), node: 'node-1' });
  assert.deepEqual(await x.locate('/db'), { id: id('b'), node: 'node-2' });
  assert.deepEqual(await x.locate(id('b')), { id: id('b'), node: 'node-2' });
  assert.deepEqual(await x.locate('bbbb'), { id: id('b'), node: 'node-2' });
  assert.equal(await x.locate('nothing'), undefined);
  await x.claim('/other', `${'a'.repeat(12)}${'c'.repeat(52)}`, 'node-3');
  assert.equal(await x.locate('aaaa'), 'ambiguous');
  assert.deepEqual([...(await x.activeCounts(['node-1', 'node-2', 'node-9'])).values()], [1, 1, 0]);
  await x.setActive(id('a'), 'node-1', false);
  await x.release(id('b'), 'node-2');
  assert.deepEqual([...(await x.activeCounts(['node-1', 'node-2'])).values()], [0, 0]);
  assert.equal(await x.locate('db'), undefined);
  assert.equal(await x.claim('/db', id('d'), 'node-1'), undefined, 'a released name can be taken');
});

test('a node rewritten from its records: what it no longer has goes, what it has is back', async () => {
  const x = new ContainerIndex(redis, 'b:');
  await x.claim('/gone', id('1'), 'node-1');
  await x.claim('/kept', id('2'), 'node-1');
  await x.claim('/elsewhere', id('3'), 'node-2');
  const summary = (name: string) => ({ name, image: 'busybox:latest', imageId: id('f'), command: ['sleep', '9'], created: '2026-12-03T19:00:00.000Z' });
  const lost = await x.rewriteNode('node-1', [
    { id: id('2'), name: '/kept', active: false, summary: summary('/kept') },
    { id: id('4'), name: '/new', active: true, summary: summary('/new') },
    { id: id('5'), name: '/elsewhere', active: true, summary: summary('/elsewhere') },
  ]);
  assert.deepEqual(lost, ['/elsewhere']);
  assert.equal(await x.locate('gone'), undefined);
  assert.deepEqual(await x.locate('new'), { id: id('4'), node: 'node-1' });
  assert.deepEqual(await x.locate('elsewhere'), { id: id('3'), node: 'node-2' });
  assert.deepEqual([...(await x.activeCounts(['node-1'])).values()], [1]);
  // What shows of them if node-1 goes down.
  assert.deepEqual((await x.containersOn('node-1')).sort((a, b) => a.id.localeCompare(b.id)).map((c) => [c.id[0], c.active, c.summary?.name]), [['2', false, '/kept'], ['4', true, '/new']]);
  await x.release(id('4'), 'node-1');
  assert.deepEqual((await x.containersOn('node-1')).map((c) => c.summary?.name), ['/kept']);
});
