// A `docker load` that fails part-way leaves nothing of itself behind, as
// Docker's does: no image, no layer directory, no tag, and a tag it would
// have moved still names what it named before. Both layouts, with the bad
// part after a good one (a corrupt or truncated second layer, a missing
// file, a bad tag, an archive cut short).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { makeTar, tarBuffer } from './images-fixtures';
import { shortTempDir, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

const id = (seed: string) => createHash('sha256').update(seed).digest('hex');

/** Docker 1.0's layout: a chain of images, base first, each with its layer, and a `repositories` file. */
function legacyEntries(layers: Buffer[], seed: string, repositories?: Record<string, Record<string, number>>): { entries: Map<string, Buffer>; ids: string[] } {
  const entries = new Map<string, Buffer>();
  const ids: string[] = [];
  layers.forEach((layer, i) => {
    const image = id(`${seed}-${i}`);
    const meta = { id: image, ...(i ? { parent: ids[i - 1] } : {}), created: '2014-06-09T12:00:00.000000000Z', container_config: { Cmd: null }, os: 'linux' };
    entries.set(`${image}/VERSION`, Buffer.from('1.0')).set(`${image}/json`, Buffer.from(JSON.stringify(meta))).set(`${image}/layer.tar`, layer);
    ids.push(image);
  });
  if (repositories) {
    const named = Object.fromEntries(Object.entries(repositories).map(([repo, tags]) => [repo, Object.fromEntries(Object.entries(tags).map(([t, i]) => [t, ids[i]]))]));
    entries.set('repositories', Buffer.from(JSON.stringify(named)));
  }
  return { entries, ids };
}

/** Today's layout: manifest.json, one config per image, layers by file name. */
function manifestEntries(images: Array<{ layers: Array<[string, Buffer]>; tags: string[]; withConfig?: boolean }>): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  const manifest = images.map((image, n) => {
    const config = Buffer.from(JSON.stringify({
      architecture: 'amd64', os: 'linux', created: '2014-06-09T12:00:00Z', config: { Cmd: ['true'] },
      rootfs: { type: 'layers', diff_ids: image.layers.map(([, body]) => `sha256:${createHash('sha256').update(body).digest('hex')}`) },
      history: image.layers.map(() => ({ created: '2014-06-09T12:00:00Z', created_by: `layer of image ${n}` })),
    }));
    const name = `${createHash('sha256').update(config).digest('hex')}.json`;
    if (image.withConfig !== false) entries.set(name, config);
    for (const [file, body] of image.layers) entries.set(file, body);
    return { Config: name, RepoTags: image.tags, Layers: image.layers.map(([file]) => file) };
  });
  entries.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  return entries;
}

describe('a docker load that fails part-way', () => {
  let stack: Stack;
  let work: string;
  let good: Buffer[];
  /** A tar cut off inside its one file's content. */
  let truncatedLayer: Buffer;

  /** What a load could leave: images with their tags, layer directories, and anything under tmp/. */
  const state = async () => {
    const images = JSON.parse((await stack.request('GET', '/v1.12/images/json?all=1')).text) as Array<{ Id: string; RepoTags: string[] }>;
    const dir = (d: string) => fs.readdirSync(path.join(stack.root, 'images', d)).sort();
    return { images: images.map((i) => `${i.Id} ${i.RepoTags.join(',')}`).sort(), layers: dir('l'), tmp: dir('tmp') };
  };
  /** The state after a failure: layers being removed go within moments. */
  const settled = async (expected: Awaited<ReturnType<typeof state>>) => {
    let now = await state();
    for (let i = 0; i < 50 && JSON.stringify(now) !== JSON.stringify(expected); i++) {
      await sleep(100);
      now = await state();
    }
    return now;
  };
  const load = async (entries: Map<string, Buffer>, cut?: number) => {
    const body = await tarBuffer(entries);
    return stack.request('POST', '/v1.12/images/load', { body: cut === undefined ? body : body.subarray(0, cut) });
  };

  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('loadfail-');
    good = await Promise.all(['one', 'two', 'three'].map((n) => makeTar([{ name: `${n}.txt`, body: `${n}\n` }])));
    truncatedLayer = (await makeTar([{ name: 'big.bin', body: 'x'.repeat(20_000) }])).subarray(0, 3000);
    assert.equal((await stack.docker(['tag', 'busybox', 'keep:latest'])).code, 0);
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(work, { recursive: true, force: true });
  });

  test("Docker 1.0's layout, its second layer truncated: the CLI reports it, nothing of the archive stays", async () => {
    const before = await state();
    const { entries } = legacyEntries([good[0], truncatedLayer, good[2]], 'truncated', { broken: { latest: 2 } });
    const file = path.join(work, 'truncated.tar');
    fs.writeFileSync(file, await tarBuffer(entries));
    const r = await stack.docker(['load', '-i', file]);
    assert.equal(r.code, 1);
    assert.deepEqual(await settled(before), before);
    assert.match(r.stderr, /layer\.tar.*(not a valid tar archive|Unexpected end of data)/);
  });

  test("Docker 1.0's layout, its second layer not a tar at all: 500, nothing stays", async () => {
    const before = await state();
    const { entries, ids } = legacyEntries([good[0], Buffer.alloc(4096, 7), good[2]], 'garbage', { broken: { latest: 2 } });
    const r = await load(entries);
    assert.equal(r.status, 500, r.text);
    assert.deepEqual(await settled(before), before);
    assert.match(r.text, new RegExp(`${ids[1]}/layer\\.tar`));
  });

  test("Docker 1.0's layout, the second image's layer missing: the first image does not stay", async () => {
    const before = await state();
    const { entries, ids } = legacyEntries([good[0], good[1]], 'missing', { broken: { latest: 1 } });
    entries.delete(`${ids[1]}/layer.tar`);
    const r = await load(entries);
    assert.equal(r.status, 500, r.text);
    assert.deepEqual(await settled(before), before);
    assert.match(r.text, new RegExp(`lacks ${ids[1]}/layer\\.tar`));
  });

  test("Docker 1.0's layout, good layers but an illegal tag: no image stays, and a tag it named first is not moved", async () => {
    const before = await state();
    const { entries } = legacyEntries([good[0], good[1]], 'badtag', { keep: { latest: 1 }, other: { 'no/slash': 1 } });
    const r = await load(entries);
    assert.equal(r.status, 500, r.text);
    assert.deepEqual(await settled(before), before);
    assert.match(r.text, /Illegal tag name: no\/slash/);
  });

  test("Docker 1.0's layout, cut short inside its second layer: nothing stays", async () => {
    const before = await state();
    const big = await makeTar([{ name: 'big.bin', body: 'y'.repeat(200_000) }]);
    const { entries } = legacyEntries([good[0], big, good[2]], 'cut', { broken: { latest: 2 } });
    const whole = await tarBuffer(entries);
    const r = await load(entries, whole.indexOf(Buffer.from('y'.repeat(1000))) + 100_000);
    assert.equal(r.status, 500, r.text);
    assert.deepEqual(await settled(before), before);
  });

  test("today's layout, its second layer truncated: nothing stays", async () => {
    const before = await state();
    const entries = manifestEntries([{ layers: [['a/layer.tar', good[0]], ['b/layer.tar', truncatedLayer]], tags: ['broken:new'] }]);
    const r = await load(entries);
    assert.equal(r.status, 500, r.text);
    assert.deepEqual(await settled(before), before);
    assert.match(r.text, /b\/layer\.tar/);
  });

  test("today's layout, its second image's config missing: the first image and its tag do not stay", async () => {
    const before = await state();
    const entries = manifestEntries([
      { layers: [['a/layer.tar', good[0]], ['b/layer.tar', good[1]]], tags: ['keep:latest', 'first:v1'] },
      { layers: [['c/layer.tar', good[2]]], tags: ['second:v1'], withConfig: false },
    ]);
    const r = await load(entries);
    assert.equal(r.status, 500, r.text);
    assert.deepEqual(await settled(before), before);
    assert.match(r.text, /lacks [0-9a-f]{64}\.json/);
  });

  test('after the failures, the same archives made whole load, and the daemon never restarted', async () => {
    const { entries, ids } = legacyEntries([good[0], good[1], good[2]], 'garbage', { broken: { latest: 2 } });
    const r = await load(entries);
    assert.equal(r.status, 200, r.text);
    assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', 'broken:latest'])).stdout.trim(), ids[2]);
    assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', 'keep:latest'])).stdout.trim(), (await stack.docker(['inspect', '-f', '{{.Id}}', 'busybox'])).stdout.trim());
    assert.deepEqual(stack.state().processes.filter((p) => p.restarts > 0), []);
  });
});
