import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { StoredImage } from '@stevedore/docker-api';
import { failingHalfWay, scratchStore, tarOf } from './scratch-store';

const CREATED = '2014-06-09T12:00:00.000000000Z';
const meta = (id: string, parent?: string): StoredImage => ({ id, ...(parent ? { parent } : {}), created: CREATED, os: 'linux' });
const imageId = (c: string) => c.repeat(64);

test('a tar stream that fails half-way: the error goes on, no layer directory and no image row stay', async () => {
  const store = scratchStore();
  try {
    const big = await tarOf({ 'a.bin': 'a'.repeat(100_000), 'b.bin': 'b'.repeat(100_000) });
    await assert.rejects(
      store.layerImages.write(async (w) => {
        const layer = await w.build(failingHalfWay(big, 60_000));
        w.register(layer, meta(imageId('a')));
      }),
      /connection lost/,
    );
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
    assert.equal(store.db.count(), 0);
  } finally {
    store.close();
  }
});

test('a write that fails after registering two images and a tag: both images, their layers and the tag go', async () => {
  const store = scratchStore();
  try {
    await assert.rejects(
      store.layerImages.write(async (w) => {
        w.register(await w.build(Readable.from(await tarOf({ base: '1' }))), meta(imageId('a')));
        w.register(await w.build(Readable.from(await tarOf({ top: '2' }))), meta(imageId('b'), imageId('a')), { tag: { repo: 'app', tag: 'v1' } });
        assert.equal(store.db.count(), 2, 'registered while the write runs');
        assert.equal((await store.layerDirs()).visible.length, 2);
        throw new Error('the archive lacks something');
      }),
      /lacks something/,
    );
    assert.equal(store.db.count(), 0);
    assert.equal(store.db.getTag('app', 'v1'), undefined);
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});

test('a tag a failed write moved names its old image again', async () => {
  const store = scratchStore();
  try {
    await store.layerImages.write(async (w) => {
      w.register(await w.build(Readable.from(await tarOf({ old: '1' }))), meta(imageId('a')), { tag: { repo: 'app', tag: 'latest' } });
    });
    await assert.rejects(
      store.layerImages.write(async (w) => {
        w.register(await w.build(Readable.from(await tarOf({ new: '2' }))), meta(imageId('b')), { tag: { repo: 'app', tag: 'latest' } });
        assert.equal(store.db.getTag('app', 'latest')?.image_id, imageId('b'));
        throw new Error('failed');
      }),
      /failed/,
    );
    assert.equal(store.db.getTag('app', 'latest')?.image_id, imageId('a'));
    assert.equal(store.db.get(imageId('b')), undefined);
    assert.equal((await store.layerDirs()).visible.length, 1);
  } finally {
    store.close();
  }
});

test('kept: registered images stay; a layer built and never registered does not', async () => {
  const store = scratchStore();
  try {
    const id = await store.layerImages.write(async (w) => {
      const used = await w.build(Readable.from(await tarOf({ kept: 'yes' })));
      await w.build(Readable.from(await tarOf({ spare: 'no' })));
      w.register(used, meta(imageId('c')));
      return imageId('c');
    });
    const row = store.db.get(id)!;
    assert.equal(row.size, 3, 'the size is the layer\'s');
    assert.equal(JSON.parse(row.meta).Size, 3);
    assert.match(row.source_digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(await store.layerDirs(), { visible: [row.layer], building: [] });
  } finally {
    store.close();
  }
});

test('a registration the database refuses (a parent it lacks) removes the layer it made visible', async () => {
  const store = scratchStore();
  try {
    await assert.rejects(
      store.layerImages.write(async (w) => {
        w.register(await w.build(Readable.from(await tarOf({ x: 'x' }))), meta(imageId('d'), imageId('e')));
      }),
      /FOREIGN KEY/,
    );
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});

test('an image a failed write registered stays while another running write counts on it, and goes when that one fails too', async () => {
  const store = scratchStore();
  try {
    let counted!: () => void;
    let release!: () => void;
    const second = store.layerImages.write(async (w) => {
      await new Promise<void>((r) => (counted = r));
      assert.ok(w.has(imageId('a')), 'the first write\'s image, provisional');
      await new Promise<void>((r) => (release = r));
      throw new Error('second failed');
    });
    await assert.rejects(
      store.layerImages.write(async (w) => {
        w.register(await w.build(Readable.from(await tarOf({ base: '1' }))), meta(imageId('a')));
        counted();
        await new Promise((r) => setImmediate(r));
        throw new Error('first failed');
      }),
      /first failed/,
    );
    assert.ok(store.db.get(imageId('a')), 'kept for the write still running');
    release();
    await assert.rejects(second, /second failed/);
    assert.equal(store.db.get(imageId('a')), undefined);
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});

test('an image that gained a tag while its write ran stays when the write fails', async () => {
  const store = scratchStore();
  try {
    await assert.rejects(
      store.layerImages.write(async (w) => {
        w.register(await w.build(Readable.from(await tarOf({ base: '1' }))), meta(imageId('a')));
        store.db.tagImage('someone', 'else', imageId('a'));
        throw new Error('failed');
      }),
      /failed/,
    );
    assert.ok(store.db.get(imageId('a')));
    assert.equal((await store.layerDirs()).visible.length, 1);
  } finally {
    store.close();
  }
});

test('a layer still being extracted when its write fails removes itself when it is done', async () => {
  const store = scratchStore();
  try {
    const data = await tarOf({ slow: 's'.repeat(50_000) });
    let feed!: () => void;
    const slow = Readable.from(
      (async function* () {
        yield data.subarray(0, 10_000);
        await new Promise<void>((r) => (feed = r));
        yield data.subarray(10_000);
      })(),
    );
    let building!: Promise<unknown>;
    await assert.rejects(
      store.layerImages.write(async (w) => {
        building = w.build(slow);
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('another part failed');
      }),
      /another part failed/,
    );
    assert.equal((await store.layerDirs()).building.length, 1, 'still being written');
    feed();
    await assert.rejects(building, /has ended/);
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});
