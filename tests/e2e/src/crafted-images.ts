// Images made of a given layer, for the tests that send crafted or
// mode-bearing layers through load and pull: the two archive layouts
// `docker load` reads, a push of the layers to a registry as a schema 2 image,
// and the read-back of an image's own layer as a save gives it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tarBuffer } from './images-fixtures';
import { tarItems, type TarItem } from './hostile-checks';
import type { Stack } from './harness';

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const newId = () => randomBytes(32).toString('hex');

/** The top layer of an image as saved (GET /images/ID/get). */
export async function savedLayer(stack: Stack, id: string): Promise<Map<string, TarItem>> {
  const saved = await stack.request('GET', `/v1.12/images/${id}/get`);
  assert.equal(saved.status, 200, saved.text.slice(0, 300));
  const layer = (await tarItems(saved.body)).get(`${id}/layer.tar`);
  assert.ok(layer, `the save holds ${id}/layer.tar`);
  return tarItems(layer.body);
}

const imageJson = (id: string, i: number, parent?: string) =>
  Buffer.from(JSON.stringify({ id, ...(parent ? { parent } : {}), created: '2020-09-13T12:26:40Z', comment: `hostile case ${i}`, container_config: { Cmd: null }, architecture: 'amd64', os: 'linux' }));

/**
 * Docker 1.0's save layout: `<id>/{VERSION,json,layer.tar}` per image, base
 * first, then `repositories`. `base` is the layer below the crafted one, if any.
 */
export function legacyArchive(repo: string, i: number, crafted: Buffer, base: Buffer | null): { archive: Promise<Buffer>; ids: string[] } {
  const entries = new Map<string, Buffer>();
  const ids: string[] = [];
  let parent: string | undefined;
  for (const layer of base ? [base, crafted] : [crafted]) {
    const id = newId();
    entries.set(`${id}/VERSION`, Buffer.from('1.0')).set(`${id}/json`, imageJson(id, i, parent)).set(`${id}/layer.tar`, layer);
    ids.push(id);
    parent = id;
  }
  entries.set('repositories', Buffer.from(JSON.stringify({ [repo]: { [`c${i}`]: parent } })));
  return { archive: tarBuffer(entries), ids };
}

/**
 * Today's layout: the layers, an image config, manifest.json; the top image
 * is named by the config's digest. `base` is the layer below the crafted one, if any.
 */
export function manifestArchive(repo: string, i: number, crafted: Buffer, base: Buffer | null): { archive: Promise<Buffer>; ids: string[] } {
  const layers = base ? [base, crafted] : [crafted];
  const diffIds = layers.map((l) => `sha256:${sha256(l)}`);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2020-09-13T12:26:40Z', config: { Cmd: ['sh'] },
    history: layers.map((_, n) => ({ created: '2020-09-13T12:26:40Z', created_by: `hostile case ${i} layer ${n}` })),
    rootfs: { type: 'layers', diff_ids: diffIds },
  }));
  const entries = new Map<string, Buffer>();
  const names = layers.map((l, n) => `${sha256(`${i}-${n}-${sha256(l)}`)}/layer.tar`);
  layers.forEach((l, n) => entries.set(names[n], l));
  const configName = `${sha256(config)}.json`;
  entries.set(configName, config);
  entries.set('manifest.json', Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [`${repo}:c${i}`], Layers: names }])));
  // The image IDs the store gives them: the base's from its layer digest, the top's the config's digest.
  const ids = base ? [sha256(` ${diffIds[0]}`), sha256(config)] : [sha256(config)];
  return { archive: tarBuffer(entries), ids };
}

async function pushBlob(registry: string, repo: string, blob: Buffer): Promise<string> {
  const digest = `sha256:${sha256(blob)}`;
  const start = await fetch(`http://${registry}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  assert.equal(start.status, 202, `upload to ${repo}`);
  const url = new URL(start.headers.get('location')!, `http://${registry}`);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: blob });
  assert.equal(put.status, 201, await put.text());
  return digest;
}

/**
 * Pushes an image of these layers (uncompressed tars, base first) with a
 * schema 2 manifest to the registry at `registry` (host:port); resolves with
 * its image ID here.
 */
export async function pushImage(registry: string, repo: string, tag: string, layers: Buffer[], note: string): Promise<string> {
  const descriptors = [];
  for (const layer of layers) {
    const gz = gzipSync(layer);
    descriptors.push({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: gz.length, digest: await pushBlob(registry, repo, gz) });
  }
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2020-09-13T12:26:40Z', config: { Cmd: ['sh'] },
    history: layers.map((_, n) => ({ created: '2020-09-13T12:26:40Z', created_by: `${note} layer ${n}` })),
    rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha256(l)}`) },
  }));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: await pushBlob(registry, repo, config) },
    layers: descriptors,
  };
  const put = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'Content-Type': manifest.mediaType }, body: JSON.stringify(manifest) });
  assert.equal(put.status, 201, await put.text());
  return sha256(config);
}
