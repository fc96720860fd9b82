import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { scratchStore, tarOf } from '../store/scratch-store';
import { MEDIA } from './media-types';
import { pullImage, pullRepository, type PullResult } from './pull';

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
  const sequential = await pullRepository(one.session, 'crew/app', { check: (t) => void checked.push(t), pull: one.pull }, true);
  assert.deepEqual(sequential.map((r) => r.id), ['a', 'b', 'c']);
  assert.deepEqual(one.stats(), { most: 1, order: ['a', 'b', 'c'] });
  assert.deepEqual(checked, ['a', 'b', 'c'], 'every tag checked before any is pulled');

  const many = fakeRepository();
  const parallel = await pullRepository(many.session, 'crew/app', { check: () => undefined, pull: many.pull }, false);
  assert.deepEqual(parallel.map((r) => r.id).sort(), ['a', 'b', 'c']);
  assert.equal(many.stats().most, 3, 'all three at once');
});

test('a repository the registry does not know, or with no tags, is a clear error', async () => {
  const missing = { repository: '/v2/x', authenticate: async () => undefined, fetch: async () => new Response('', { status: 404 }) };
  await assert.rejects(pullRepository(missing, 'x', { check: () => undefined, pull: async () => ({ id: '', digest: '', fresh: false }) }, false), /repository x not found/);
  const empty = { repository: '/v2/x', authenticate: async () => undefined, fetch: async () => new Response(JSON.stringify({ tags: null }), { status: 200 }) };
  await assert.rejects(pullRepository(empty, 'x', { check: () => undefined, pull: async () => ({ id: '', digest: '', fresh: false }) }, false), /has no tags/);
});

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A registry holding one image of two layers; `tamper` changes the second blob as served. */
async function fakeImageRegistry(tamper = false) {
  const tars = [await tarOf({ 'base.txt': 'base' }), await tarOf({ 'top.txt': 'top' })];
  const blobs = tars.map((t) => gzipSync(t));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', rootfs: { type: 'layers', diff_ids: tars.map(digestOf) } }));
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifestV2,
    config: { mediaType: MEDIA.config, size: config.length, digest: digestOf(config) },
    layers: blobs.map((b) => ({ mediaType: MEDIA.layerGzip, size: b.length, digest: digestOf(b) })),
  };
  const served = new Map<string, Buffer>([[manifest.config.digest, config], [manifest.layers[0].digest, blobs[0]], [manifest.layers[1].digest, tamper ? gzipSync(tars[0]) : blobs[1]]]);
  return {
    repository: 'crew/app',
    authenticate: async () => undefined,
    fetch: async (p: string) => {
      if (p === 'crew/app/manifests/v1') return new Response(JSON.stringify(manifest), { status: 200, headers: { 'content-type': MEDIA.manifestV2 } });
      const blob = served.get(p.replace('crew/app/blobs/', ''));
      return blob ? new Response(blob, { status: 200 }) : new Response('', { status: 404 });
    },
  };
}

test('a pull registers each layer as an image with its blob, and tags the top one', async () => {
  const store = scratchStore();
  try {
    const result = await pullImage(store.layerImages, await fakeImageRegistry(), 'crew/app', 'v1', () => undefined, new AbortController().signal);
    assert.equal(result.fresh, true);
    assert.equal(store.db.getTag('crew/app', 'v1')?.image_id, result.id);
    const top = store.db.get(result.id)!;
    assert.ok(top.parent && store.db.get(top.parent), 'the base layer is its parent');
    assert.equal(store.db.blobsOf(result.id).length, 1);
    assert.equal((await store.layerDirs()).visible.length, 2);
  } finally {
    store.close();
  }
});

test('a pull whose second layer does not match its digest fails and keeps none of its layers', async () => {
  const store = scratchStore();
  try {
    await assert.rejects(
      pullImage(store.layerImages, await fakeImageRegistry(true), 'crew/app', 'v1', () => undefined, new AbortController().signal),
      /does not match its digest/,
    );
    assert.equal(store.db.count(), 0);
    assert.equal(store.db.getTag('crew/app', 'v1'), undefined);
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});
