// docker push: each layer of the chain as a gzipped tar streamed to the
// registry (its digests computed on the way), skipped when the registry
// already holds a blob known to carry it; then the config and a schema 2
// manifest per tag.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { refused } from '@stevedore/errors';
import { layerTar } from '@stevedore/archive';
import { imageConfig, sha256 } from '../image-config';
import type { ImageService } from '../images.service';
import { TransferProgress, type ProgressSink } from '../progress';
import { parseMeta, type ImageRow } from '../store/image-db';
import { MEDIA, type Descriptor, type Manifest } from './media-types';
import { requestBody, type RegistrySession } from './session';

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

async function startUpload(session: RegistrySession): Promise<string> {
  const res = await session.fetch(`${session.repository}/blobs/uploads/`, { method: 'POST' });
  await res.body?.cancel();
  const location = res.headers.get('location');
  if (res.status !== 202 || !location) throw refused(`The registry refused to start an upload (${res.status} ${res.statusText})`);
  return session.resolve(location);
}

async function finishUpload(session: RegistrySession, location: string, digest: string, body?: Buffer): Promise<void> {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  const res = await session.fetch(url.toString(), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
    body: body ?? new Uint8Array(0),
  });
  await res.body?.cancel();
  if (res.status !== 201) throw refused(`The registry refused blob ${digest} (${res.status} ${res.statusText})`);
}

async function blobExists(session: RegistrySession, digest: string): Promise<boolean> {
  const res = await session.fetch(`${session.repository}/blobs/${digest}`, { method: 'HEAD' });
  await res.body?.cancel();
  return res.ok;
}

/** Streams one layer up; resolves with its blob descriptor and the digest of its tar. */
async function uploadLayer(images: ImageService, session: RegistrySession, row: ImageRow, progress: ProgressSink): Promise<{ descriptor: Descriptor; diffId: string }> {
  const id = short(row.id);
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const diffTap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      diffHash.update(chunk);
      cb(null, chunk);
    },
  });
  const blobTap = new TransferProgress(progress, { status: 'Pushing', id }, { hash: blobHash });
  const source = layerTar(images.layers.path(row.layer));
  const gzip = createGzip();
  for (const s of [source, diffTap, gzip]) s.on('error', (err) => blobTap.destroy(err));
  source.pipe(diffTap).pipe(gzip).pipe(blobTap);

  const location = await startUpload(session);
  const res = await session.fetch(location, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream' },
    body: requestBody(blobTap),
    duplex: 'half',
  } as RequestInit & { headers: Record<string, string> });
  await res.body?.cancel();
  if (res.status !== 202) throw refused(`The registry refused layer ${id} (${res.status} ${res.statusText})`);
  const digest = `sha256:${blobHash.digest('hex')}`;
  await finishUpload(session, session.resolve(res.headers.get('location') ?? location), digest);
  return { descriptor: { mediaType: MEDIA.layerGzip, digest, size: blobTap.bytes }, diffId: `sha256:${diffHash.digest('hex')}` };
}

export async function pushImages(images: ImageService, session: RegistrySession, name: string, tags: Array<{ tag: string; row: ImageRow }>, progress: ProgressSink): Promise<void> {
  // Announced first: a refusal by the registry then reaches the client in the stream.
  await progress({ status: `The push refers to repository [${name}]` });
  await session.authenticate();
  const done = new Map<string, { descriptor: Descriptor; diffId: string }>();
  for (const { tag, row } of tags) {
    const chain: ImageRow[] = [];
    for (let r: ImageRow | undefined = row; r; r = r.parent ? images.db.get(r.parent) : undefined) chain.unshift(r);
    for (const r of chain) if (!done.has(r.id)) await progress({ status: 'Preparing', id: short(r.id), perLayer: true });
    for (const r of chain) {
      if (done.has(r.id)) continue;
      let pushed: { descriptor: Descriptor; diffId: string } | undefined;
      for (const blob of images.db.blobsOf(r.id)) {
        if (await blobExists(session, blob.digest)) {
          pushed = { descriptor: { mediaType: blob.media_type, digest: blob.digest, size: blob.size }, diffId: blob.diff_id };
          await progress({ status: 'Layer already exists', id: short(r.id), perLayer: true });
          break;
        }
      }
      if (!pushed) {
        pushed = await uploadLayer(images, session, r, progress);
        images.db.recordBlob({ image_id: r.id, digest: pushed.descriptor.digest, diff_id: pushed.diffId, size: pushed.descriptor.size, media_type: pushed.descriptor.mediaType });
        await progress({ status: 'Pushed', id: short(r.id), perLayer: true });
      }
      done.set(r.id, pushed);
    }
    const layers = chain.map((r) => done.get(r.id)!);
    const config = Buffer.from(JSON.stringify(imageConfig(chain.map(parseMeta), layers.map((l) => l.diffId))));
    const configDigest = `sha256:${sha256(config)}`;
    if (!(await blobExists(session, configDigest))) await finishUpload(session, await startUpload(session), configDigest, config);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MEDIA.manifestV2,
      config: { mediaType: MEDIA.config, size: config.length, digest: configDigest },
      layers: layers.map((l) => l.descriptor),
    };
    const body = Buffer.from(JSON.stringify(manifest));
    const res = await session.fetch(`${session.repository}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': MEDIA.manifestV2 }, body });
    const text = await res.text();
    if (res.status !== 201) throw refused(`The registry refused the manifest of ${name}:${tag} (${res.status}): ${text.slice(0, 300)}`);
    await progress({ status: `${tag}: digest: ${res.headers.get('docker-content-digest') ?? `sha256:${sha256(body)}`} size: ${body.length}` });
  }
}
