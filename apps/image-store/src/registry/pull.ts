// docker pull: a manifest (schema 2 or OCI; from a list or index, the
// linux/amd64 one), its config, and its layers, each downloaded once even
// when pulls run at the same time, verified against both of its digests,
// extracted as a layer, and registered as an image of Docker 1.0's model.
import { createHash } from 'node:crypto';
import { notFound, refused } from '@stevedore/errors';
import { decompress } from '@stevedore/archive';
import { chainIds, layerImageMeta, sha256, type ImageConfigJson } from '../image-config';
import { TransferProgress, type ProgressSink } from '../progress';
import type { BuiltLayer, LayerImages, LayerImageWrite } from '../store/layer-images';
import { MANIFEST_ACCEPT, MEDIA, type Descriptor, type Manifest } from './media-types';
import { responseBody, type RegistryAccess } from './session';

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

async function fetchManifest(session: RegistryAccess, reference: string, name: string): Promise<{ manifest: Manifest; digest: string }> {
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

export async function pullImage(store: LayerImages, session: RegistryAccess, name: string, tag: string, progress: ProgressSink, signal: AbortSignal): Promise<PullResult> {
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
  // One write: a pull that fails keeps none of the layers it registered.
  const fresh = await store.write(async (w) => {
    if (w.has(top)) {
      store.db.tagImage(name, tag, top);
      return false;
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
      if (w.has(id)) work = Promise.resolve(progress({ status: 'Already exists', id: sid, perLayer: true }));
      else if (work) {
        // Said in passing: a client gone meanwhile is this pull's to notice at its next awaited step.
        progress({ status: 'Waiting', id: sid, perLayer: true })?.catch(() => undefined);
        // Another pull registers it: this one counts on it from then on.
        work = work.then(() => {
          if (!w.has(id)) throw refused(`Layer ${layer.digest} was removed while this pull waited for it`);
        });
      } else {
        work = (async () => {
          await progress({ status: 'Pulling fs layer', id: sid, perLayer: true });
          await slot();
          let built: BuiltLayer;
          try {
            built = await downloadLayer(w, session, layer, diffIds[i], progress, signal);
          } finally {
            release();
          }
          await parentDone;
          const parent = i > 0 ? ids[i - 1] : null;
          w.register(built, layerImageMeta(config, i, ids.length, id, parent, built.size), {
            blob: { digest: layer.digest, diff_id: diffIds[i], size: layer.size, media_type: layer.mediaType },
          });
          await progress({ status: 'Pull complete', id: sid, perLayer: true });
        })();
        inflight.set(id, work);
        void work.finally(() => inflight.delete(id)).catch(() => undefined);
      }
      registered.push(Promise.all([parentDone, work]).then(() => undefined));
    });
    await Promise.all(registered);
    store.db.tagImage(name, tag, top);
    return true;
  });
  await progress({ status: `Digest: ${digest}` });
  await progress({ status: fresh ? `Status: Downloaded newer image for ${name}:${tag}` : `Status: Image is up to date for ${name}:${tag}` });
  return { id: top, digest, fresh };
}

/** Tags pulled side by side when a whole repository is pulled (gate G2 above v1.3). */
const PARALLEL_TAGS = 3;

/**
 * Every tag of a repository (a pull without a tag, as Docker 1.0 did and
 * `docker pull -a` does): one after another when `oneAtATime` (gate G2,
 * v1.3 and older), else a few side by side (shared layers are fetched once).
 */
export async function pullRepository(
  session: RegistryAccess,
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
async function downloadLayer(w: LayerImageWrite, session: RegistryAccess, layer: Descriptor, diffId: string, progress: ProgressSink, signal: AbortSignal): Promise<BuiltLayer> {
  const sid = short(layer.digest);
  if (!/gzip|tar$|tar\+gzip|rootfs\.diff\.tar$/.test(layer.mediaType) && layer.mediaType !== MEDIA.layerGzip) {
    throw refused(`Layer ${layer.digest} is ${layer.mediaType}, which Stevedore cannot unpack`);
  }
  const res = await session.fetch(`${session.repository}/blobs/${layer.digest}`, { signal });
  if (!res.ok || !res.body) throw refused(`The registry answered ${res.status} for layer ${layer.digest}`);
  const hash = createHash('sha256');
  const counting = new TransferProgress(progress, { status: 'Downloading', id: sid, total: layer.size }, { hash });
  const { stream } = await decompress(responseBody(res.body).pipe(counting));
  // A layer that fails its checks is not registered: the write removes it at its end.
  const built = await w.build(stream, { allowEmpty: true, overlapWrites: true });
  if (`sha256:${hash.digest('hex')}` !== layer.digest) throw refused(`Layer ${layer.digest} does not match its digest`);
  if (built.digest !== diffId) throw refused(`Layer ${layer.digest} unpacks to ${built.digest}, not to ${diffId} as the config says`);
  await progress({ status: 'Download complete', id: sid, perLayer: true });
  return built;
}
