import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { images } from '@stevedore/contracts';
import type { StoredImage } from '@stevedore/docker-api';
import type { Logger } from '@stevedore/logging';
import type { NewEvent } from '@stevedore/redis';
import { ImageService } from './images.service';
import { failingHalfWay, scratchStore, tarOf, type ScratchStore } from './store/scratch-store';

const quiet = { info() {}, warn() {}, debug() {}, error() {} } as unknown as Logger;
const never = new AbortController().signal;
const noProgress = () => undefined;

/** The service on a temporary store, its events recorded instead of sent to Redis. */
function service(): { images: ImageService; store: ScratchStore; events: string[] } {
  const store = scratchStore();
  const events: string[] = [];
  const log = { append: async (e: NewEvent) => (events.push(`${e.action} ${e.id.slice(0, 4)}${e.attributes?.name ? ` ${e.attributes.name}` : ''}`), '1-0') };
  return { images: new ImageService(store.db, store.layers, store.layerImages, log, quiet), store, events };
}

async function importTar(images: ImageService, files: Record<string, string>, repo = '', tag = ''): Promise<string> {
  return images.import({ fromSrc: '-', repo, tag, comment: '', data: Readable.from(await tarOf(files)) }, noProgress, never);
}

/** An image with a chosen ID, parent and creation time (milliseconds). */
async function addImage(store: ScratchStore, id: string, created: number, parent?: string): Promise<void> {
  await store.layerImages.write(async (w) => {
    const meta: StoredImage = { id, ...(parent ? { parent } : {}), created: new Date(created).toISOString() };
    w.register(await w.build(Readable.from(await tarOf({ [id.slice(0, 8)]: id })), { allowEmpty: true }), meta);
  });
}

const listReq = (over: Partial<images.ListImagesRequest> = {}): images.ListImagesRequest => ({ all: false, danglingOnly: false, repoGlob: '', ...over });
const del = (name: string, over: Partial<images.DeleteImageRequest> = {}): images.DeleteImageRequest => ({ name, force: false, noprune: false, ...over });
const commitHeader = (parent: string, over: Partial<images.CommitHeader> = {}): images.CommitHeader => ({
  containerId: 'c'.repeat(64), containerConfigJson: JSON.stringify({ Cmd: ['sh'], Env: ['A=1'] }), parent, repo: '', tag: '',
  comment: '', author: '', configJson: '', exactConfig: false, ...over,
});

test('import: a tagged image with its layer; tag moves a tag and says so; names resolve by tag, ID and prefix', async () => {
  const { images, store, events } = service();
  try {
    const id = await importTar(images, { 'etc/hostname': 'box\n' }, 'docker.io/library/base', 'v1');
    assert.equal(images.inspect('base:v1').id, id, 'Docker Hub names are kept as the user typed them');
    assert.equal(images.resolve(id.slice(0, 6)).id, id);
    assert.equal(images.resolve(`sha256:${id}`).id, id);
    assert.equal(images.inspect(id).size, 4);
    const other = await importTar(images, { x: 'y' });
    images.tag({ name: other, repo: 'base', tag: 'v1', force: false });
    assert.equal(images.resolve('base:v1').id, other);
    assert.deepEqual(events, [`tag ${other.slice(0, 4)} base:v1`]);
    assert.throws(() => images.tag({ name: other, repo: 'Bad', tag: 'v1', force: false }), /Invalid repository name \(Bad\)/);
    assert.throws(() => images.tag({ name: other, repo: 'good', tag: 'a:b', force: false }), /Illegal tag name: a:b/);
    assert.throws(() => images.resolve('nothere'), /No such image: nothere/);
  } finally {
    store.close();
  }
});

test('import of a stream that fails half-way: the error goes on, no image, no tag, no layer directory', async () => {
  const { images, store } = service();
  try {
    const data = failingHalfWay(await tarOf({ big: 'z'.repeat(200_000) }), 50_000);
    await assert.rejects(images.import({ fromSrc: '-', repo: 'half', tag: 'v1', comment: '', data }, noProgress, never), /connection lost/);
    assert.equal(store.db.count(), 0);
    assert.equal(store.db.getTag('half', 'v1'), undefined);
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});

test('rmi of an image tagged in two repositories is refused without force; forced, both tags and the image go', async () => {
  const { images, store, events } = service();
  try {
    const id = await importTar(images, { a: 'a' }, 'one', 'latest');
    images.tag({ name: id, repo: 'two', tag: 'latest', force: false });
    assert.throws(() => images.delete(del(id)), /cannot delete image [0-9a-f]{64} because it is tagged in multiple repositories, use -f to force/);
    events.length = 0;
    const items = images.delete(del(id, { force: true }));
    assert.deepEqual(items.map((i) => i.item), [
      { $case: 'untagged', untagged: 'one:latest' },
      { $case: 'untagged', untagged: 'two:latest' },
      { $case: 'deleted', deleted: id },
    ]);
    assert.deepEqual(events, [`untag ${id.slice(0, 4)} one:latest`, `untag ${id.slice(0, 4)} two:latest`, `delete ${id.slice(0, 4)}`]);
    assert.equal(store.db.count(), 0);
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});

test('rmi of an image a container uses: refused while it runs (even forced); stopped, refused unless forced, and forced it only loses its tag', async () => {
  const { images, store } = service();
  try {
    const id = await importTar(images, { a: 'a' }, 'used', 'latest');
    images.useImage('used', 'f'.repeat(64), true);
    assert.throws(() => images.delete(del('used')), new RegExp(`cannot delete ${id.slice(0, 12)} because the running container ffffffffffff is using it, stop it and use -f to force`));
    assert.throws(() => images.delete(del('used', { force: true })), /cannot force delete .* because the running container ffffffffffff is using it, stop it and retry/);
    assert.equal(images.resolve('used:latest').id, id, 'a refused rmi leaves the tag');
    images.useImage(id, 'f'.repeat(64), false);
    assert.throws(() => images.delete(del('used')), /because the container ffffffffffff is using it, use -f to force/);
    assert.deepEqual(images.delete(del('used', { force: true })).map((i) => i.item?.$case), ['untagged']);
    assert.ok(store.db.get(id), 'the image stays for its container');
    assert.equal((await store.layerDirs()).visible.length, 1);
  } finally {
    store.close();
  }
});

test('rmi of a parent is refused; rmi of its child prunes it unless noprune', async () => {
  const { images, store } = service();
  try {
    const base = await importTar(images, { base: '1' });
    const child = await images.commit(commitHeader(base, { repo: 'app', tag: 'v1' }), Readable.from(await tarOf({ more: '2' })));
    assert.throws(() => images.delete(del(base)), new RegExp(`Conflict, ${base} wasn't deleted`));
    assert.deepEqual(images.delete(del('app:v1', { noprune: true })).map((i) => i.item), [{ $case: 'untagged', untagged: 'app:v1' }, { $case: 'deleted', deleted: child }]);
    assert.ok(store.db.get(base), 'noprune keeps the parent');
    const again = await images.commit(commitHeader(base, { repo: 'app', tag: 'v2' }), Readable.from(await tarOf({ more: '3' })));
    assert.deepEqual(images.delete(del('app:v2')).map((i) => i.item), [
      { $case: 'untagged', untagged: 'app:v2' },
      { $case: 'deleted', deleted: again },
      { $case: 'deleted', deleted: base },
    ]);
    assert.deepEqual(await store.layerDirs(), { visible: [], building: [] });
  } finally {
    store.close();
  }
});

test('list: newest first, ties by ID; untagged parents only with all; dangling and glob filters', async () => {
  const { images, store } = service();
  try {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => x.repeat(64));
    await addImage(store, b, 3_000_000);
    await addImage(store, a, 3_000_000);
    await addImage(store, c, 1_000_000);
    await addImage(store, d, 2_000_000, c);
    store.db.tagImage('web', 'latest', d);
    store.db.tagImage('db', 'latest', b);
    assert.deepEqual(images.list(listReq()).map((i) => i.id), [a, b, d], 'c is a parent without a tag');
    assert.deepEqual(images.list(listReq({ all: true })).map((i) => i.id), [a, b, d, c]);
    assert.deepEqual(images.list(listReq({ danglingOnly: true })).map((i) => i.id), [a]);
    assert.deepEqual(images.list(listReq({ repoGlob: 'w*' })).map((i) => i.repoTags), [['web:latest']]);
    const web = images.list(listReq()).find((i) => i.id === d)!;
    assert.equal(web.virtualSize, web.size + store.db.get(c)!.size);
    assert.equal(web.created, 2000);
  } finally {
    store.close();
  }
});

test('commit: the given config fields win over the container\'s, empty ones do not; the parent must exist', async () => {
  const { images, store } = service();
  try {
    const base = await importTar(images, { base: '1' });
    const id = await images.commit(commitHeader(base, { configJson: JSON.stringify({ Cmd: ['run'], Env: [], WorkingDir: '' }), author: 'me' }), Readable.from(await tarOf({ f: 'x' })));
    const meta = JSON.parse(store.db.get(id)!.meta) as StoredImage;
    assert.deepEqual(meta.config?.Cmd, ['run']);
    assert.deepEqual(meta.config?.Env, ['A=1'], 'an empty list given does not clear the container\'s');
    assert.equal(meta.parent, base);
    assert.equal(meta.author, 'me');
    assert.equal(images.history(id).length, 2);
    await assert.rejects(images.commit(commitHeader('9'.repeat(64)), Readable.from(await tarOf({ f: 'x' }))), /No such image: 9{64}/);
    assert.equal(store.db.count(), 2);
  } finally {
    store.close();
  }
});
