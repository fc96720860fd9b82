// docker pull: a manifest (schema 2 or OCI; from a list or index, the
// linux/amd64 one), its config, and its layers, each downloaded once even
// when pulls run at the same time, verified against both of its digests,
// extracted as a layer, and registered as an image of Docker 1.0's model.
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { notFound, refused } from '@stevedore/errors';
import { applyLayer, decompress } from '@stevedore/archive';
import { chainIds, layerImageMeta, sha256, type ImageConfigJson } from '../image-config';
import type { ImageService, ProgressSink } from '../images.service';
import { MANIFEST_ACCEPT, MEDIA, type Descriptor, type Manifest } from './media-types';
import type { RegistrySession } from './session';

const PARALLEL_DOWNLOADS = 3;
const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/** Per chain ID: the registration in flight, shared by concurrent pulls. */
const inflight = new Map<string, Promise<void>>();

async function json<T>(res: Response, what: string): Promise<{ value: T; bytes: Buffer }> {
  const bytes = Buffer.from(await res.arrayBuffer());
  try {
    return { value: JSON.parse(bytes.toString('utf8')) as T, bytes };
  } catch {
    throw refused(`The registry sent a ${what} that is not JSON`);
  }
}

async function fetchManifest(session: RegistrySession, reference: string, name: string): Promise<{ manifest: Manifest; digest: string }> {
  const res = await session.fetch(`${session.repository}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT } });
  if (res.status === 404) {
    await res.body?.cancel();
    throw notFound(`manifest for ${name} not found: manifest unknown`);
  }
  if (!res.ok) throw refused(`The registry answered ${res.status} ${res.statusText} for the manifest of ${name}`);
  const type = (res.headers.get('content-type') ?? '').split(';')[0];
  const { value, bytes } = await json<Manifest>(res, 'manifest');
  const digest = res.headers.get('docker-content-digest') ?? `sha256:${sha256(bytes)}`;
  if (type === MEDIA.manifestList || type === MEDIA.ociIndex || value.manifests) {
    const pick = (value.manifests ?? []).find((m) => (m.platform?.os ?? 'linux') === 'linux' && (m.platform?.architecture ?? 'amd64') === 'amd64');
    if (!pick) throw notFound(`no matching manifest for linux/amd64 in the manifest list entries of ${name}`);
    return fetchManifest(session, pick.digest, name);
  }
  if (value.schemaVersion !== 2 || !value.config || !Array.isArray(value.layers)) {
    throw refused(`The manifest of ${name} is of a kind Stevedore does not read (${type || `schema ${value.schemaVersion}`})`);
  }
  return { manifest: value, digest };
}

export interface PullResult {
  id: string;
  digest: string;
  fresh: boolean;
}

export async function pullImage(images: ImageService, session: RegistrySession, name: string, tag: string, progress: ProgressSink, signal: AbortSignal): Promise<PullResult> {
  await session.authenticate();
  const { manifest, digest } = await fetchManifest(session, tag, `${name}:${tag}`);
  const configRes = await session.fetch(`${session.repository}/blobs/${manifest.config.digest}`);
  if (!configRes.ok) throw refused(`The registry answered ${configRes.status} for the config of ${name}:${tag}`);
  const { value: config, bytes: configBytes } = await json<ImageConfigJson>(configRes, 'config');
  if (`sha256:${sha256(configBytes)}` !== manifest.config.digest) throw refused(`The config of ${name}:${tag} does not match its digest`);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw refused(`The manifest of ${name}:${tag} has ${manifest.layers.length} layers but its config ${diffIds.length}`);

  await progress({ status: `Pulling from ${session.repository}`, id: tag, perLayer: true });
  const ids = chainIds(configBytes, diffIds);
  const top = ids[ids.length - 1];
  if (images.db.get(top)) {
    images.db.tagImage(name, tag, top);
    await progress({ status: `Digest: ${digest}` });
    await progress({ status: `Status: Image is up to date for ${name}:${tag}` });
    return { id: top, digest, fresh: false };
  }

  // Downloads run a few at a time; each layer is registered after its parent.
  let slots = PARALLEL_DOWNLOADS;
  const waiting: Array<() => void> = [];
  const slot = async () => {
    if (slots > 0) return void slots--;
    await new Promise<void>((r) => waiting.push(r));
  };
  const release = () => (waiting.length ? waiting.shift()!() : void slots++);

  const registered: Array<Promise<void>> = [];
  manifest.layers.forEach((layer, i) => {
    const id = ids[i];
    const parentDone = i > 0 ? registered[i - 1] : Promise.resolve();
    const sid = short(layer.digest);
    let work = inflight.get(id);
    if (images.db.get(id)) work = progress({ status: 'Already exists', id: sid, perLayer: true }) as Promise<void> | undefined ?? Promise.resolve();
    else if (work) void progress({ status: 'Waiting', id: sid, perLayer: true });
    else {
      work = (async () => {
        await progress({ status: 'Pulling fs layer', id: sid, perLayer: true });
        await slot();
        let built: { name: string; size: number };
        try {
          built = await downloadLayer(images, session, layer, diffIds[i], progress, signal);
        } finally {
          release();
        }
        try {
          await parentDone;
          const meta = layerImageMeta(config, i, ids.length, id, i > 0 ? ids[i - 1] : null, built.size);
          images.layers.finish(built.name);
          try {
            images.db.registerImage({ id, parent: i > 0 ? ids[i - 1] : null, created: Date.parse(meta.created) || Date.now(), size: built.size, layer: built.name, source_digest: diffIds[i], meta: JSON.stringify(meta) });
          } catch (err) {
            images.layers.remove(built.name);
            throw err;
          }
          images.db.recordBlob({ image_id: id, digest: layer.digest, diff_id: diffIds[i], size: layer.size, media_type: layer.mediaType });
        } catch (err) {
          images.layers.abandon(built.name);
          throw err;
        }
        await progress({ status: 'Pull complete', id: sid, perLayer: true });
      })();
      inflight.set(id, work);
      void work.finally(() => inflight.delete(id)).catch(() => undefined);
    }
    registered.push(Promise.all([parentDone, work]).then(() => undefined));
  });
  await Promise.all(registered);
  images.db.tagImage(name, tag, top);
  await progress({ status: `Digest: ${digest}` });
  await progress({ status: `Status: Downloaded newer image for ${name}:${tag}` });
  return { id: top, digest, fresh: true };
}

/** Tags pulled side by side when a whole repository is pulled (gate G2 above v1.3). */
const PARALLEL_TAGS = 3;

/**
 * Every tag of a repository (a pull without a tag, as Docker 1.0 did and
 * `docker pull -a` does): one after another when `oneAtATime` (gate G2,
 * v1.3 and older), else a few side by side (shared layers are fetched once).
 */
export async function pullRepository(
  session: Pick<RegistrySession, 'authenticate' | 'fetch' | 'repository'>,
  name: string,
  /** Checks a tag can be written here (before anything is pulled), and pulls one. */
  tags: { check(tag: string): void; pull(tag: string): Promise<PullResult> },
  oneAtATime: boolean,
): Promise<PullResult[]> {
  await session.authenticate();
  const res = await session.fetch(`${session.repository}/tags/list`);
  if (res.status === 404) {
    await res.body?.cancel();
    throw notFound(`repository ${name} not found`);
  }
  if (!res.ok) throw refused(`The registry answered ${res.status} ${res.statusText} for the tags of ${name}`);
  const pending = ((await json<{ tags?: string[] | null }>(res, 'tag list')).value.tags ?? []).sort();
  if (!pending.length) throw notFound(`repository ${name} has no tags`);
  for (const tag of pending) tags.check(tag);
  const results: PullResult[] = [];
  const next = async (): Promise<void> => {
    for (let tag = pending.shift(); tag !== undefined; tag = pending.shift()) results.push(await tags.pull(tag));
  };
  await Promise.all(Array.from({ length: oneAtATime ? 1 : PARALLEL_TAGS }, next));
  return results;
}

/** Downloads one layer blob into a new (not yet visible) layer directory, checking both digests. */
async function downloadLayer(images: ImageService, session: RegistrySession, layer: Descriptor, diffId: string, progress: ProgressSink, signal: AbortSignal): Promise<{ name: string; size: number }> {
  const sid = short(layer.digest);
  if (!/gzip|tar$|tar\+gzip|rootfs\.diff\.tar$/.test(layer.mediaType) && layer.mediaType !== MEDIA.layerGzip) {
    throw refused(`Layer ${layer.digest} is ${layer.mediaType}, which Stevedore cannot unpack`);
  }
  const res = await session.fetch(`${session.repository}/blobs/${layer.digest}`, { signal });
  if (!res.ok || !res.body) throw refused(`The registry answered ${res.status} for layer ${layer.digest}`);
  const hash = createHash('sha256');
  const start = Math.floor(Date.now() / 1000);
  let current = 0;
  let reported = 0;
  const step = Math.min(512 * 1024, Math.max(1, Math.floor(layer.size / 100)));
  const counting = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      current += chunk.length;
      if (current - reported >= step) {
        reported = current;
        void progress({ status: 'Downloading', id: sid, current, total: layer.size, start, perLayer: true });
      }
      cb(null, chunk);
    },
  });
  const built = images.layers.begin();
  try {
    const { stream } = await decompress(Readable.fromWeb(res.body as never).pipe(counting));
    const applied = await applyLayer(stream, built.dir, { allowEmpty: true, overlapWrites: true });
    if (`sha256:${hash.digest('hex')}` !== layer.digest) throw refused(`Layer ${layer.digest} does not match its digest`);
    if (applied.digest !== diffId) throw refused(`Layer ${layer.digest} unpacks to ${applied.digest}, not to ${diffId} as the config says`);
    await progress({ status: 'Download complete', id: sid, perLayer: true });
    return { name: built.name, size: applied.size };
  } catch (err) {
    images.layers.abandon(built.name);
    throw err;
  }
}
