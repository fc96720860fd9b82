import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pullRepository, type PullResult } from './pull';

/** A registry that lists three tags; each tag's pull waits until released, so overlap is visible. */
function fakeRepository() {
  const session = {
    repository: '/v2/crew/app',
    authenticate: async () => undefined,
    fetch: async () => new Response(JSON.stringify({ tags: ['c', 'a', 'b'] }), { status: 200 }),
  };
  let running = 0;
  let most = 0;
  const order: string[] = [];
  const pull = async (tag: string): Promise<PullResult> => {
    order.push(tag);
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 20));
    running--;
    return { id: tag, digest: '', fresh: true };
  };
  return { session, pull, stats: () => ({ most, order }) };
}

test('gate G2: a repository\'s tags one after another (v1.3 and older), side by side above', async () => {
  const one = fakeRepository();
  const checked: string[] = [];
  const sequential = await pullRepository(one.session as never, 'crew/app', { check: (t) => void checked.push(t), pull: one.pull }, true);
  assert.deepEqual(sequential.map((r) => r.id), ['a', 'b', 'c']);
  assert.deepEqual(one.stats(), { most: 1, order: ['a', 'b', 'c'] });
  assert.deepEqual(checked, ['a', 'b', 'c'], 'every tag checked before any is pulled');

  const many = fakeRepository();
  const parallel = await pullRepository(many.session as never, 'crew/app', { check: () => undefined, pull: many.pull }, false);
  assert.deepEqual(parallel.map((r) => r.id).sort(), ['a', 'b', 'c']);
  assert.equal(many.stats().most, 3, 'all three at once');
});

test('a repository the registry does not know, or with no tags, is a clear error', async () => {
  const missing = { repository: '/v2/x', authenticate: async () => undefined, fetch: async () => new Response('', { status: 404 }) };
  await assert.rejects(pullRepository(missing as never, 'x', { check: () => undefined, pull: async () => ({ id: '', digest: '', fresh: false }) }, false), /repository x not found/);
  const empty = { repository: '/v2/x', authenticate: async () => undefined, fetch: async () => new Response(JSON.stringify({ tags: null }), { status: 200 }) };
  await assert.rejects(pullRepository(empty as never, 'x', { check: () => undefined, pull: async () => ({ id: '', digest: '', fresh: false }) }, false), /has no tags/);
});
