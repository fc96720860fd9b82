// docker save and docker load. A saved tarball has Docker 1.0's layout —
// one directory per image of each chain (VERSION, json, layer.tar) and a
// `repositories` file — and, at its end, the manifest.json and image config
// that today's `docker load` reads. Loading takes either layout. Layers are
// streamed in both directions; nothing is held whole in memory.
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Writable, type Readable } from 'node:stream';
import * as tar from 'tar-stream';
import type { StoredImage } from '@stevedore/docker-api';
import { notFound, refused } from '@stevedore/errors';
import { layerTar, layerTarSize } from '@stevedore/archive';
import { chainIds, imageConfig, layerImageMeta, sha256, type ImageConfigJson } from './image-config';
import { parseMeta, type ImageDb, type ImageRow } from './store/image-db';
import type { BuiltLayer, LayerImages, LayerImageWrite } from './store/layer-images';
import type { LayerStore } from './store/layer-store';
import { DEFAULT_TAG, isIdPrefix, splitReference, tagTarget } from './store/names';

/** JSON files of a saved archive are small; anything larger is a layer. */
const MAX_JSON_ENTRY = 8 * 1024 * 1024;

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, body?: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => pack.entry({ mode: 0o644, mtime: new Date(0), ...header } as tar.Header, body ?? '', (err) => (err ? reject(err) : resolve())));
}

interface SaveTarget {
  row: ImageRow;
  /** repo:tag names this image is saved under. */
  tags: Array<{ repo: string; tag: string }>;
}

/** Archive path of a layer file -> the layer extracted from it. */
type ArchiveLayers = Map<string, BuiltLayer>;

/** What an archive registers: the images, and the tags to set once all are there. */
interface Registration {
  loaded: string[];
  tags: Array<{ repo: string; tag: string; id: string }>;
}

export class ImageArchive {
  constructor(
    private readonly db: ImageDb,
    private readonly layers: LayerStore,
    private readonly layerImages: LayerImages,
  ) {}

  /** Resolves every name first, so that an unknown one fails before any byte is sent. */
  private targets(names: string[]): SaveTarget[] {
    const targets = new Map<string, SaveTarget>();
    const add = (row: ImageRow, tag?: { repo: string; tag: string }) => {
      const t = targets.get(row.id) ?? { row, tags: [] };
      if (tag && !t.tags.some((x) => x.repo === tag.repo && x.tag === tag.tag)) t.tags.push(tag);
      targets.set(row.id, t);
    };
    for (const name of names) {
      const { repo, tag } = splitReference(name);
      const repoTags = tag === undefined ? this.db.repoTags(repo) : [];
      if (repoTags.length > 0) {
        // A repository without a tag: every tag of it.
        for (const t of repoTags) add(this.db.get(t.image_id)!, { repo: t.repo, tag: t.tag });
        continue;
      }
      const tagged = this.db.getTag(repo, tag ?? DEFAULT_TAG);
      if (tagged) {
        add(this.db.get(tagged.image_id)!, { repo: tagged.repo, tag: tagged.tag });
        continue;
      }
      const id = name.replace(/^sha256:/, '');
      const rows = isIdPrefix(id) ? this.db.byPrefix(id) : [];
      if (rows.length !== 1) throw notFound(`No such image: ${name}`);
      add(rows[0]);
    }
    return [...targets.values()];
  }

  /** The chain of an image, base first. */
  private chain(row: ImageRow): ImageRow[] {
    const out: ImageRow[] = [];
    for (let r: ImageRow | undefined = row; r; r = r.parent ? this.db.get(r.parent) : undefined) out.unshift(r);
    return out;
  }

  /** Streams the tarball of `names`; resolves after the last byte. */
  async save(names: string[], out: Writable, signal: AbortSignal): Promise<void> {
    const targets = this.targets(names);
    const pack = tar.pack();
    const sending = pipeline(pack as unknown as Readable, out);
    const diffIds = new Map<string, string>();
    const written = new Set<string>();
    try {
      for (const target of targets) {
        for (const row of this.chain(target.row)) {
          if (written.has(row.id)) continue;
          if (signal.aborted) throw new Error('cancelled');
          written.add(row.id);
          await entry(pack, { name: `${row.id}/`, type: 'directory', mode: 0o755 });
          await entry(pack, { name: `${row.id}/VERSION` }, '1.0');
          await entry(pack, { name: `${row.id}/json` }, JSON.stringify(parseMeta(row)));
          diffIds.set(row.id, await this.addLayer(pack, row));
        }
      }
      const repositories: Record<string, Record<string, string>> = {};
      for (const t of targets) for (const { repo, tag } of t.tags) (repositories[repo] ??= {})[tag] = t.row.id;
      if (Object.keys(repositories).length) await entry(pack, { name: 'repositories' }, JSON.stringify(repositories));

      // What today's docker load reads: an OCI-style image config and manifest.json.
      const manifest = [];
      for (const t of targets) {
        const chain = this.chain(t.row);
        const config = imageConfig(chain.map(parseMeta), chain.map((r) => diffIds.get(r.id)!));
        const text = JSON.stringify(config);
        const configName = `${sha256(text)}.json`;
        await entry(pack, { name: configName }, text);
        manifest.push({ Config: configName, RepoTags: t.tags.map((x) => `${x.repo}:${x.tag}`), Layers: chain.map((r) => `${r.id}/layer.tar`) });
      }
      await entry(pack, { name: 'manifest.json' }, JSON.stringify(manifest));
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
      await sending.catch(() => undefined);
      throw err;
    }
    await sending;
  }

  /** layer.tar needs its size in its header: it is computed from the layer's metadata, then the layer streams straight in. */
  private async addLayer(pack: tar.Pack, row: ImageRow): Promise<string> {
    const dir = this.layers.path(row.layer);
    const size = await layerTarSize(dir);
    const hash = createHash('sha256');
    const tee = new PassThrough();
    tee.on('data', (c: Buffer) => hash.update(c));
    const body = pack.entry({ name: `${row.id}/layer.tar`, size, mode: 0o644, mtime: new Date(0) } as tar.Header);
    await pipeline(layerTar(dir), tee, body);
    return `sha256:${hash.digest('hex')}`;
  }

  /**
   * Reads a saved tarball; registers the images it holds (parents first) and
   * its tags. One write of layer images: a failure anywhere leaves nothing.
   */
  load(input: Readable): Promise<{ loaded: string[]; tagged: string[] }> {
    return this.layerImages.write(async (w) => {
      const { files, layers } = await this.extract(input, w);
      const registration = files.has('manifest.json') && ![...files.keys()].some((k) => /^[0-9a-f]{64}\/json$/.test(k))
        ? this.registerFromManifest(w, files, layers)
        : this.registerLegacy(w, files, layers);
      // The tags last, together: an archive's tags are all set or none is.
      this.db.transaction(() => {
        for (const t of registration.tags) this.db.tagImage(t.repo, t.tag, t.id);
      });
      return { loaded: registration.loaded, tagged: registration.tags.map((t) => `${t.repo}:${t.tag}`) };
    });
  }

  /** Reads the archive: its JSON files kept, its layers extracted as they stream by. */
  private async extract(input: Readable, w: LayerImageWrite): Promise<{ files: Map<string, Buffer>; layers: ArchiveLayers }> {
    const files = new Map<string, Buffer>();
    const layers: ArchiveLayers = new Map();
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      // A truncated archive fails the entry too; the extract reports it.
      stream.on('error', () => undefined);
      void (async () => {
        const name = header.name.replace(/^\.\//, '');
        if (header.type !== 'file' && header.type !== 'contiguous-file') return void stream.resume();
        const idDir = /^([0-9a-f]{64})\/(json|layer\.tar|VERSION)$/.exec(name);
        // Docker 1.0's layout puts <id>/json before <id>/layer.tar: a layer of an image already here is skipped.
        if (idDir && idDir[2] === 'layer.tar' && files.has(`${idDir[1]}/json`) && w.has(idDir[1])) return void stream.resume();
        if (idDir?.[2] === 'VERSION') return void stream.resume();
        const looksJson = name.endsWith('.json') || name === 'repositories' || idDir?.[2] === 'json' || name === 'index.json' || name === 'oci-layout';
        if (looksJson && (header.size ?? 0) <= MAX_JSON_ENTRY) {
          const chunks: Buffer[] = [];
          for await (const c of stream) chunks.push(c as Buffer);
          files.set(name, Buffer.concat(chunks));
          return;
        }
        // Anything else is a layer (Docker 1.0's <id>/layer.tar, or a blob of the newer layouts).
        try {
          layers.set(name, await w.build(stream as unknown as Readable, { allowEmpty: true }));
        } catch (err) {
          throw refused(`Cannot load ${name} from the archive: ${(err as Error).message}`);
        }
      })().then(() => next(), (err) => next(err));
    });
    try {
      await pipeline(input, extract);
    } catch (err) {
      if ((err as { kind?: string }).kind) throw err;
      throw refused(`The archive could not be read: ${(err as Error).message}`);
    }
    return { files, layers };
  }

  private json<T>(files: Map<string, Buffer>, name: string): T {
    try {
      return JSON.parse(files.get(name)!.toString('utf8')) as T;
    } catch {
      throw refused(`The archive's ${name} is not valid JSON`);
    }
  }

  /** Docker 1.0's layout: <id>/json and <id>/layer.tar per image, `repositories` for the tags. */
  private registerLegacy(w: LayerImageWrite, files: Map<string, Buffer>, layers: ArchiveLayers): Registration {
    const metas = new Map<string, StoredImage>();
    for (const [name] of files) {
      const m = /^([0-9a-f]{64})\/json$/.exec(name);
      if (m) metas.set(m[1], this.json<StoredImage>(files, name));
    }
    if (metas.size === 0 && !files.has('repositories')) throw refused('The archive holds no image (no <id>/json and no manifest.json)');
    const loaded: string[] = [];
    const register = (id: string, seen: Set<string>) => {
      if (w.has(id)) return;
      const meta = metas.get(id);
      if (!meta) throw refused(`The archive lacks image ${id}, which another image needs`);
      if (seen.has(id)) throw refused(`The archive's images form a loop at ${id}`);
      seen.add(id);
      if (meta.parent) register(meta.parent, seen);
      const file = `${id}/layer.tar`;
      const layer = layers.get(file);
      if (!layer) throw refused(`The archive lacks ${file}`);
      w.register(layer, { ...meta, id });
      loaded.push(id);
    };
    for (const id of metas.keys()) register(id, new Set());
    const tags: Registration['tags'] = [];
    if (files.has('repositories')) {
      const repos = this.json<Record<string, Record<string, string>>>(files, 'repositories');
      for (const [repo, repoTags] of Object.entries(repos)) {
        for (const [tag, id] of Object.entries(repoTags)) {
          if (!w.has(id)) throw refused(`The archive tags ${repo}:${tag} as ${id}, which it does not hold`);
          tags.push({ ...tagTarget(repo, tag), id });
        }
      }
    }
    return { loaded, tags };
  }

  /**
   * The newer layout: manifest.json names a config and the layer files.
   * Each layer becomes an image of Docker 1.0's model: the top one's ID is
   * the config's digest (as today's engines name it), the ones below are
   * derived from their parent and content, so loading twice adds nothing.
   */
  private registerFromManifest(w: LayerImageWrite, files: Map<string, Buffer>, layers: ArchiveLayers): Registration {
    const manifest = this.json<Array<{ Config: string; RepoTags?: string[] | null; Layers: string[] }>>(files, 'manifest.json');
    if (!Array.isArray(manifest)) throw refused('The archive\'s manifest.json is not a list');
    const loaded: string[] = [];
    const tags: Registration['tags'] = [];
    const used = new Set<string>();
    for (const m of manifest) {
      const configBytes = files.get(m.Config);
      if (!configBytes) throw refused(`The archive lacks ${m.Config}`);
      const config = this.json<ImageConfigJson>(files, m.Config);
      const diffIds = m.Layers.map((file) => layers.get(file)?.digest ?? config.rootfs?.diff_ids?.[m.Layers.indexOf(file)] ?? file);
      const ids = chainIds(configBytes, diffIds);
      let parent: string | null = null;
      m.Layers.forEach((file, i) => {
        const id = ids[i];
        if (!w.has(id)) {
          const layer = layers.get(file);
          if (!layer) throw refused(`The archive lacks ${file}`);
          if (used.has(file)) throw refused(`The archive uses ${file} twice`);
          used.add(file);
          w.register(layer, layerImageMeta(config, i, m.Layers.length, id, parent, layer.size));
          loaded.push(id);
        }
        parent = id;
      });
      for (const ref of m.RepoTags ?? []) {
        const { repo, tag } = splitReference(ref);
        tags.push({ ...tagTarget(repo, tag ?? DEFAULT_TAG), id: parent! });
      }
    }
    return { loaded, tags };
  }
}
