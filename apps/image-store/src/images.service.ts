// The image store's operations on Docker 1.0's model: every image is one
// layer and an optional parent; repositories map tags to images.
import { containerConfigText } from '@stevedore/contracts';
import { Readable } from 'node:stream';
import { STEVEDORE_VERSION } from '@stevedore/config';
import type { ContainerConfig, StoredImage } from '@stevedore/docker-api';
import { sameBuildConfig } from '@stevedore/docker-api';
import { conflict, notFound, refused } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import type { EventLog } from '@stevedore/redis';
import type { images } from '@stevedore/contracts';
import { decompress } from '@stevedore/archive';
import { TransferProgress, type ProgressSink } from './progress';
import { parseMeta, type ImageDb, type ImageRow } from './store/image-db';
import type { LayerImages } from './store/layer-images';
import type { LayerStore } from './store/layer-store';
import { DEFAULT_TAG, isIdPrefix, newImageId, splitReference, tagTarget } from './store/names';
import { responseBody } from './registry/session';

/** How far below a cache hit the image store looks ahead for the builder. */
const CACHE_CHAIN_LENGTH = 64;

/** Docker 1.0 wrote every key of an empty config (Go structs have no omitted fields). */
export const EMPTY_CONFIG: ContainerConfig = {
  Hostname: '', Domainname: '', User: '', Memory: 0, MemorySwap: 0, CpuShares: 0, Cpuset: '',
  AttachStdin: false, AttachStdout: false, AttachStderr: false, PortSpecs: null, ExposedPorts: null,
  Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null,
  WorkingDir: '', Entrypoint: null, NetworkDisabled: false, OnBuild: null,
};

const short = (id: string) => id.slice(0, 12);

export interface ImportSource {
  fromSrc: string;
  repo: string;
  tag: string;
  comment: string;
  /** The archive, for fromSrc "-". */
  data?: Readable;
}

/** Where the image store's events go (the events service's log in Redis). */
export type ImageEvents = Pick<EventLog, 'append'>;

export class ImageService {
  constructor(
    readonly db: ImageDb,
    readonly layers: LayerStore,
    readonly layerImages: LayerImages,
    private readonly events: ImageEvents,
    private readonly log: Logger,
  ) {}

  private publish(action: 'tag' | 'untag' | 'delete', id: string, name?: string): void {
    this.events.append({ type: 'image', action, id, attributes: name ? { name } : {} }).catch((err) => this.log.warn({ err }, 'publishing an event failed'));
  }

  /** An image by repository[:tag], full ID or unique ID prefix. */
  resolve(name: string): ImageRow {
    const row = this.find(name);
    if (!row) throw notFound(`No such image: ${name}`);
    return row;
  }

  private find(name: string): ImageRow | undefined {
    const { repo, tag } = splitReference(name);
    const byTag = this.db.getTag(repo, tag ?? DEFAULT_TAG);
    if (byTag) return this.db.get(byTag.image_id);
    const id = name.replace(/^sha256:/, '');
    if (isIdPrefix(id)) {
      const rows = this.db.byPrefix(id);
      if (rows.length === 1) return rows[0];
    }
    return undefined;
  }

  /** POST /images/create?fromSrc=: a new base image from an archive. */
  async import(src: ImportSource, progress: ProgressSink, signal: AbortSignal): Promise<string> {
    const target = src.repo ? tagTarget(src.repo, src.tag) : undefined;
    let data: Readable;
    if (src.fromSrc === '-') {
      if (!src.data) throw refused('No archive to import');
      data = src.data;
    } else {
      data = await this.download(src.fromSrc, progress, signal);
    }
    const { id, layer } = await this.layerImages.write(async (w) => {
      const { stream } = await decompress(data);
      // An imported layer is known by its image ID: no digest of the archive is kept.
      const layer = await w.build(stream, { digest: false });
      const meta: StoredImage = {
        id: newImageId(),
        comment: src.comment || `Imported from ${src.fromSrc}`,
        created: new Date().toISOString(),
        container_config: EMPTY_CONFIG,
        docker_version: STEVEDORE_VERSION,
        architecture: 'amd64',
        os: 'linux',
      };
      w.register(layer, meta, { tag: target });
      return { id: meta.id, layer };
    });
    this.log.info({ id, size: layer.size, entries: layer.entries, tag: target }, 'imported');
    await progress({ status: id });
    return id;
  }

  private async download(url: string, progress: ProgressSink, signal: AbortSignal): Promise<Readable> {
    const full = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
    // Said before the download, as Docker 1.0 did: a failure to download is an error inside the stream.
    await progress({ status: `Downloading from ${full}` });
    let res: Response;
    try {
      res = await fetch(full, { signal, redirect: 'follow' });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw refused(`Get ${full}: ${cause}`);
    }
    if (!res.ok || !res.body) throw refused(`Get ${full}: the server answered ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('content-length') ?? 0);
    return responseBody(res.body).pipe(new TransferProgress(progress, { status: 'Importing', total }, { reportEnd: true }));
  }

  private tagMap(): Map<string, string[]> {
    const map = new Map<string, string[]>();
    for (const t of this.db.allTags()) {
      const list = map.get(t.image_id) ?? [];
      list.push(`${t.repo}:${t.tag}`);
      map.set(t.image_id, list);
    }
    return map;
  }

  /** GET /images/json. */
  list(req: images.ListImagesRequest): images.ImageSummary[] {
    const rows = this.db.all();
    const byId = new Map(rows.map((r) => [r.id, r]));
    const parents = new Set(rows.map((r) => r.parent).filter((p): p is string => Boolean(p)));
    const tags = this.tagMap();
    const virtual = new Map<string, number>();
    const virtualSize = (r: ImageRow): number => {
      let v = virtual.get(r.id);
      if (v === undefined) {
        const parent = r.parent ? byId.get(r.parent) : undefined;
        v = r.size + (parent ? virtualSize(parent) : 0);
        virtual.set(r.id, v);
      }
      return v;
    };
    const glob = req.repoGlob ? globToRegExp(req.repoGlob) : undefined;
    const out: images.ImageSummary[] = [];
    for (const r of rows) {
      let repoTags = tags.get(r.id) ?? [];
      const hasChildren = parents.has(r.id);
      if (req.danglingOnly && (repoTags.length > 0 || hasChildren)) continue;
      if (glob) {
        repoTags = repoTags.filter((t) => glob.test(splitReference(t).repo));
        if (repoTags.length === 0) continue;
      } else if (!req.all && repoTags.length === 0 && hasChildren) continue;
      out.push({ id: r.id, parentId: r.parent ?? '', created: Math.floor(r.created / 1000), size: r.size, virtualSize: virtualSize(r), repoTags, hasChildren });
    }
    return out.sort((a, b) => b.created - a.created || (a.id < b.id ? -1 : 1));
  }

  inspect(name: string): images.InspectImageResponse {
    const row = this.resolve(name);
    let virtualSize = 0;
    for (let r: ImageRow | undefined = row; r; r = r.parent ? this.db.get(r.parent) : undefined) virtualSize += r.size;
    return { id: row.id, metadataJson: row.meta, size: row.size, virtualSize, repoTags: this.db.tagsOf(row.id).map((t) => `${t.repo}:${t.tag}`) };
  }

  history(name: string): images.HistoryEntry[] {
    const entries: images.HistoryEntry[] = [];
    for (let r: ImageRow | undefined = this.resolve(name); r; r = r.parent ? this.db.get(r.parent) : undefined) {
      const meta = parseMeta(r);
      entries.push({
        id: r.id,
        created: Math.floor(r.created / 1000),
        createdBy: (meta.container_config?.Cmd ?? []).join(' '),
        size: r.size,
        tags: this.db.tagsOf(r.id).map((t) => `${t.repo}:${t.tag}`),
        comment: meta.comment ?? '',
      });
    }
    return entries;
  }

  /** POST /images/(name)/tag. Docker 1.0 always moved an existing tag: `force` changes nothing. */
  tag(req: images.TagRequest): void {
    const row = this.resolve(req.name);
    const { repo, tag } = tagTarget(req.repo, req.tag);
    this.db.tagImage(repo, tag, row.id);
    this.publish('tag', row.id, `${repo}:${tag}`);
  }

  /** DELETE /images/(name), with Docker 1.0's rules (ENDPOINTS.md #29). */
  delete(req: images.DeleteImageRequest): images.DeleteImageItem[] {
    const items: images.DeleteImageItem[] = [];
    const events: Array<['untag' | 'delete', string, string?]> = [];
    const layersToRemove: string[] = [];
    this.db.transaction(() => {
      const { repo, tag } = splitReference(req.name);
      const tagRow = this.db.getTag(repo, tag ?? DEFAULT_TAG);
      const row = tagRow ? this.db.get(tagRow.image_id) : this.find(req.name);
      if (!row) {
        throw notFound(this.db.repoTags(repo).length > 0 ? `No such image: ${repo}:${tag ?? DEFAULT_TAG}` : `No such image: ${req.name}`);
      }
      const untag = (r: string, t: string) => {
        this.db.untagImage(r, t);
        items.push({ item: { $case: 'untagged', untagged: `${r}:${t}` } });
        events.push(['untag', row.id, `${r}:${t}`]);
      };
      // Docker 1.0: a name contained in the image's ID addresses it by ID, even when it is also a repository.
      if (tagRow && !row.id.includes(req.name)) {
        untag(tagRow.repo, tagRow.tag);
      } else {
        const tags = this.db.tagsOf(row.id);
        if (new Set(tags.map((t) => t.repo)).size > 1 && !req.force) {
          throw conflict(`Conflict, cannot delete image ${req.name} because it is tagged in multiple repositories, use -f to force`);
        }
        // Docker 1.0 removed only the first repository's tags under force (a bug); all go.
        for (const t of tags) untag(t.repo, t.tag);
      }
      const removeIfUnused = (r: ImageRow, first: boolean): boolean => {
        if (this.db.tagsOf(r.id).length > 0 || this.db.hasChildren(r.id)) return false;
        const users = this.db.usersOf(r.id);
        const running = users.find((u) => u.running);
        if (running) {
          if (!first) return false;
          throw conflict(
            req.force
              ? `Conflict, cannot force delete ${short(r.id)} because the running container ${short(running.user_id)} is using it, stop it and retry`
              : `Conflict, cannot delete ${short(r.id)} because the running container ${short(running.user_id)} is using it, stop it and use -f to force`,
          );
        }
        if (users.length > 0) {
          if (first && !req.force) {
            throw conflict(`Conflict, cannot delete ${short(r.id)} because the container ${short(users[0].user_id)} is using it, use -f to force`);
          }
          // Forced: untagged above, but its layer stays while a container needs it.
          return false;
        }
        this.db.deleteImageRow(r.id);
        layersToRemove.push(r.layer);
        items.push({ item: { $case: 'deleted', deleted: r.id } });
        events.push(['delete', r.id]);
        return true;
      };
      if (removeIfUnused(row, true) && !req.noprune) {
        for (let p = row.parent ? this.db.get(row.parent) : undefined; p; p = p.parent ? this.db.get(p.parent) : undefined) {
          if (!removeIfUnused(p, false)) break;
        }
      }
      if (items.length === 0) throw conflict(`Conflict, ${req.name} wasn't deleted`);
    });
    // Layers go once the metadata no longer names them.
    for (const layer of layersToRemove) this.layers.remove(layer);
    for (const [action, id, name] of events) this.publish(action, id, name);
    return items;
  }

  /** POST /commit: the container's diff as a new image on top of the container's image. */
  async commit(h: images.CommitHeader, diff: Readable): Promise<string> {
    const target = h.repo ? tagTarget(h.repo, h.tag) : undefined;
    const parent = this.db.get(h.parent);
    if (!parent) throw notFound(`No such image: ${h.parent}`);
    const containerConfig = containerConfigText.decode(h.containerConfigJson) ?? {};
    let config: ContainerConfig = containerConfig;
    if (h.exactConfig) config = containerConfigText.decode(h.configJson) ?? {};
    else if (h.configJson) {
      // Docker 1.0 ignored a body it could not read; the fields it gives win, the rest come from the container.
      try {
        const given = JSON.parse(h.configJson) as ContainerConfig | null;
        if (given && typeof given === 'object') {
          config = { ...containerConfig };
          for (const [k, v] of Object.entries(given)) {
            const empty = v === undefined || v === null || v === '' || v === 0 || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);
            if (!empty) (config as Record<string, unknown>)[k] = v;
          }
        }
      } catch {
        config = containerConfig;
      }
    }
    return this.layerImages.write(async (w) => {
      const layer = await w.build(diff, { allowEmpty: true });
      const meta: StoredImage = {
        id: newImageId(),
        parent: parent.id,
        ...(h.comment ? { comment: h.comment } : {}),
        created: new Date().toISOString(),
        container: h.containerId,
        container_config: containerConfig,
        docker_version: STEVEDORE_VERSION,
        ...(h.author ? { author: h.author } : {}),
        config,
        architecture: 'amd64',
        os: 'linux',
      };
      w.register(layer, meta, { tag: target });
      return meta.id;
    });
  }

  /**
   * The build cache: the most recent child of `parent` committed from a
   * config the builder counts as the same, and the chain of most recent
   * children below it (see FindCachedResponse).
   */
  findCached(parent: string, containerConfigJson: string): { id: string; chain: Array<{ id: string; containerConfigJson: string }> } {
    const wanted = containerConfigText.decode(containerConfigJson) ?? {};
    const children = (id: string) =>
      this.db
        .children(id)
        .map((c) => this.db.get(c))
        .filter((r): r is NonNullable<typeof r> => Boolean(r))
        .sort((a, b) => b.created - a.created);
    const match = children(parent).find((row) => {
      const meta = JSON.parse(row.meta) as StoredImage;
      return meta.container_config !== undefined && sameBuildConfig(meta.container_config, wanted);
    });
    if (!match) return { id: '', chain: [] };
    return { id: match.id, chain: this.cacheChain(match.id) };
  }

  /** Below an image: its most recent child, that one's, and so on (CACHE_CHAIN_LENGTH at most). */
  cacheChain(id: string): images.CachedLink[] {
    const chain: images.CachedLink[] = [];
    for (let at = id; chain.length < CACHE_CHAIN_LENGTH; ) {
      const next = this.db
        .children(at)
        .map((c) => this.db.get(c))
        .filter((r): r is NonNullable<typeof r> => Boolean(r))
        .reduce<ImageRow | undefined>((best, r) => (!best || r.created > best.created ? r : best), undefined);
      if (!next) break;
      chain.push({ id: next.id, containerConfigJson: containerConfigText.encode(parseMeta(next).container_config ?? {}) });
      at = next.id;
    }
    return chain;
  }

  /** A build's FROM: the image, and the cache chain below it. */
  buildBase(name: string): images.BuildBaseResponse {
    const image = this.inspect(name);
    return { image, chain: this.cacheChain(image.id) };
  }

  /** The name an image is shown by: its alphabetically first repo:tag, or its short ID. */
  displayName(id: string): string {
    const tags = this.db.tagsOf(id);
    return tags.length ? `${tags[0].repo}:${tags[0].tag}` : short(id);
  }

  /** A container starts using an image (recorded in the same transaction that finds it): its layers as this host's directories. */
  useImage(name: string, user: string, running = false, node = ''): images.UseImageResponse {
    return this.db.transaction(() => {
      const row = this.resolve(name);
      this.db.useImage(row.id, user, running, node);
      const layers: string[] = [];
      for (let r: ImageRow | undefined = row; r; r = r.parent ? this.db.get(r.parent) : undefined) layers.push(this.layers.path(r.layer));
      const meta = parseMeta(row);
      return { id: row.id, layers, configJson: containerConfigText.encode(meta.config), displayName: this.displayName(row.id), layerRefs: [] };
    });
  }

  /** The chain of an image, top first, as rows (for a node that fetches its layers by digest). */
  chainOf(id: string): ImageRow[] {
    const chain: ImageRow[] = [];
    for (let r: ImageRow | undefined = this.db.get(id); r; r = r.parent ? this.db.get(r.parent) : undefined) chain.push(r);
    return chain;
  }

  /**
   * The container runtime's account of every container's use of its image
   * replaces the record (at the runtime's start, and whenever it reconnects
   * to this store): a UseImage or ReleaseImage lost while this store was away
   * is righted by it.
   */
  reconcileImageUse(uses: images.ImageUse[], node = ''): images.ReconcileImageUseResponse {
    const r = this.db.reconcileImageUse(uses.map((u) => ({ image_id: u.image, user_id: u.user, running: u.running ? 1 : 0 })), node);
    const unknownImages = r.unknown.map((u) => ({ user: u.user_id, image: u.image_id, running: Boolean(u.running) }));
    if (r.added || r.dropped || unknownImages.length) {
      this.log.info({ node, added: r.added, dropped: r.dropped, unknownImages }, 'image use reconciled with the container records');
    }
    return { unknownImages, added: r.added, dropped: r.dropped };
  }

  count(): number {
    return this.db.count();
  }
}

/** Docker 1.0's `filter`: a shell glob on the repository name. */
function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`);
}
