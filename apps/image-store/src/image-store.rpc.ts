// The ImageStore gRPC service: thin adapters over ImageService, typed by the generated definition.
import { Metadata, type ServerDuplexStream, type ServerWritableStream } from '@grpc/grpc-js';
import { images } from '@stevedore/contracts';
import type { StevedoreConfig } from '@stevedore/config';
import { invalid } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import { clientBytes, headerThenBytes, messageWriter, sendBytes, writeWithBackpressure, type ServiceHandlers } from '@stevedore/service-kit';
import type { ImageArchive } from './image-archive';
import type { LayerBlobs } from './layer-blobs';
import type { BlobStore } from './store/blob-store';
import { pullImage, pullRepository } from './registry/pull';
import { pushImages } from './registry/push';
import { remoteRepository } from './registry/reference';
import { searchCatalog } from './registry/search';
import { CATALOG_SCOPE, RegistrySession, repositoryScope, type Credentials } from './registry/session';
import { normalizeRepository, splitReference, tagTarget, validateRepository } from './store/names';
import { notFound, refused } from '@stevedore/errors';
import type { ImageService } from './images.service';
import { progressMessage, type ProgressSink } from './progress';
import { checkLogin } from './registry/login';
import { parseRegistryAddress } from './registry/registry-address';
import { HeldCredentials } from './registry/held-credentials';

/** Credentials from an AuthConfig (username/password, or the `auth` field's user:password). */
function credentials(auth: images.AuthConfig | undefined): Credentials | undefined {
  if (!auth) return undefined;
  let { username, password } = auth;
  if (!username && auth.auth) {
    const decoded = Buffer.from(auth.auth, 'base64').toString();
    const colon = decoded.indexOf(':');
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  return username ? { username, password, identityToken: auth.identityToken } : undefined;
}

/** A stream's progress steps, each sent as a whole message when the client is ready for it. */
function progressTo(call: ServerWritableStream<unknown, images.Progress> | ServerDuplexStream<unknown, images.Progress>, signal: AbortSignal): ProgressSink {
  return (p) => writeWithBackpressure(call, progressMessage(p), signal);
}

export class ImageStoreRpc {
  /** Pulls in progress, by repository:tag (a second one waits for the first). */
  private readonly pulling = new Map<string, Promise<unknown>>();
  /** Builds' registry credentials, in memory only. */
  private readonly heldCredentials = new HeldCredentials();
  /** Repositories being pushed (one push of a repository at a time). */
  private readonly pushing = new Set<string>();

  constructor(
    private readonly config: StevedoreConfig,
    private readonly log: Logger,
    private readonly images: ImageService,
    private readonly archive: ImageArchive,
    /** Build contexts on their way to a build worker. */
    private readonly blobs: BlobStore,
    /** Layers by digest, for a cluster's nodes. */
    private readonly layerBlobs: LayerBlobs,
  ) {}

  handlers(): ServiceHandlers<typeof images.ImageStoreService> {
    return {
      info: async () => ({
        images: this.images.count(),
        driver: 'overlay',
        driverStatus: [
          { key: 'Root Dir', value: this.images.layers.root },
          { key: 'Backing Filesystem', value: 'overlayfs' },
        ],
        rootDir: this.images.layers.root,
      }),
      checkAuth: async (req, ctx) => {
        const address = parseRegistryAddress(req.serverAddress, this.config.insecureRegistries);
        const creds = credentials(req) ?? { username: '', password: '' };
        const status = await checkLogin(address, creds);
        ctx.log.info({ registry: address.host, username: creds.username }, 'login checked');
        return { status, identityToken: '' };
      },
      import: async (call, ctx) => {
        const { header, bytes } = await headerThenBytes(call, (r) => (r.part?.$case === 'chunk' ? r.part.chunk : undefined));
        if (header.part?.$case !== 'header') throw invalid('Import must start with its header');
        const h = header.part.header;
        // Names are checked before anything is streamed: a bad one is still a plain HTTP error.
        if (h.repo) tagTarget(h.repo, h.tag);
        call.sendMetadata(new Metadata());
        await this.images.import(
          { fromSrc: h.fromSrc, repo: h.repo, tag: h.tag, comment: h.comment, data: h.fromSrc === '-' ? bytes : undefined },
          progressTo(call, ctx.signal),
          ctx.signal,
        );
        if (h.fromSrc !== '-') bytes.resume();
      },
      list: async (req) => ({ images: this.images.list(req) }),
      inspect: async (req) => this.images.inspect(req.name),
      history: async (req) => ({ entries: this.images.history(req.name) }),
      tag: async (req) => {
        this.images.tag(req);
        return {};
      },
      delete: async (req) => ({ items: this.images.delete(req) }),
      save: async (req, call, ctx) => {
        await this.archive.save(req.names, messageWriter(call, (data) => ({ data })), ctx.signal);
      },
      holdCredentials: async (req) => {
        this.heldCredentials.hold(req.ref, req.configs);
        return {};
      },
      releaseCredentials: async (req) => {
        this.heldCredentials.release(req.ref);
        return {};
      },
      pull: async (req, call, ctx) => {
        let { repo, tag } = { repo: normalizeRepository(req.image), tag: req.tag as string | undefined };
        if (!tag) ({ repo, tag } = splitReference(req.image));
        validateRepository(repo);
        if (tag) tagTarget(repo, tag);
        const remote = remoteRepository(repo, this.config.insecureRegistries);
        const auth = req.heldCredentials ? this.heldCredentials.forRepository(req.heldCredentials, repo) : req.auth;
        const session = new RegistrySession(remote.address, remote.path, credentials(auth), repositoryScope(remote.path, 'pull'));
        const progress = progressTo(call, ctx.signal);
        // As Docker 1.0: a second pull of what is being pulled waits for the first, and says so.
        const key = `${repo}:${tag ?? ''}`;
        const running = this.pulling.get(key);
        if (running) {
          await progress({ status: `Repository ${repo} already being pulled by another client. Waiting.` });
          // Until the first ends, or this one's client goes.
          await Promise.race([running.catch(() => undefined), new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }))]);
          return;
        }
        const pullTag = (t: string) => pullImage(this.images.layerImages, session, repo, t, progress, ctx.signal);
        const work = tag
          ? pullTag(tag).then((r) => [r])
          : pullRepository(session, repo, { check: (t) => void tagTarget(repo, t), pull: pullTag }, req.oneAtATime);
        this.pulling.set(key, work);
        try {
          const results = await work;
          ctx.log.info({ repo, tag: tag ?? '(every tag)', images: results.map((r) => r.id) }, 'pulled');
        } finally {
          this.pulling.delete(key);
        }
      },
      push: async (req, call, ctx) => {
        const repo = normalizeRepository(req.name);
        validateRepository(repo);
        const tags = req.tag
          ? [{ tag: req.tag, row: ((t) => (t ? this.images.db.get(t.image_id) : undefined))(this.images.db.getTag(repo, req.tag)) }]
          : this.images.db.repoTags(repo).map((t) => ({ tag: t.tag, row: this.images.db.get(t.image_id) }));
        if (tags.length === 0 || tags.some((t) => !t.row)) throw notFound(`An image does not exist locally with the tag: ${repo}${req.tag ? `:${req.tag}` : ''}`);
        // Docker 1.0 refused a second push of a repository while one ran.
        if (this.pushing.has(repo)) throw refused(`push ${repo} is already in progress`);
        this.pushing.add(repo);
        try {
          const remote = remoteRepository(repo, this.config.insecureRegistries);
          const session = new RegistrySession(remote.address, remote.path, credentials(req.auth), repositoryScope(remote.path, 'push,pull'));
          await pushImages(this.images, session, repo, tags.map((t) => ({ tag: t.tag, row: t.row! })), progressTo(call, ctx.signal));
        } finally {
          this.pushing.delete(repo);
        }
      },
      search: async (req) => {
        // A term may start with a registry host: search that registry's catalog for the rest.
        const { address, path } = remoteRepository(req.term, this.config.insecureRegistries);
        const explicitHost = req.term.split('/')[0] === address.host;
        const term = explicitHost ? path : req.term;
        const session = new RegistrySession(address, '', credentials(req.auth), CATALOG_SCOPE);
        return { results: await searchCatalog(session, explicitHost ? `${address.host}/` : '', term) };
      },
      useImage: async (req) => {
        const use = this.images.useImage(req.image, req.user, req.running, req.node);
        if (!req.byDigest) return use;
        // A node of a cluster: the layers by digest, which it fetches from the layer blobs when it lacks them.
        return { ...use, layers: [], layerRefs: await this.layerBlobs.refs(this.images.chainOf(use.id)) };
      },
      releaseImage: async (req) => {
        this.images.db.releaseImage(req.user);
        return {};
      },
      reconcileImageUse: async (req) => this.images.reconcileImageUse(req.uses, req.node),
      imageNames: async (req) => ({
        names: Object.fromEntries(req.ids.map((id) => [id, this.images.db.get(id) ? this.images.displayName(id) : id.slice(0, 12)])),
      }),
      commit: async (call, ctx) => {
        const { header, bytes } = await headerThenBytes(call, (r) => (r.part?.$case === 'chunk' ? r.part.chunk : undefined));
        if (header.part?.$case !== 'header') throw invalid('Commit must start with its header');
        const id = await this.images.commit(header.part.header, bytes);
        ctx.log.info({ id, container: header.part.header.containerId }, 'committed');
        return { id };
      },
      putBlob: async (call, ctx) => {
        const id = await this.blobs.put(clientBytes(call, (c) => c.data));
        ctx.log.info({ blob: id }, 'blob stored');
        return { id };
      },
      getBlob: async (req, call, ctx) => {
        await sendBytes(this.blobs.read(req.id), call, (data) => ({ data }), ctx.signal);
      },
      deleteBlob: async (req) => {
        this.blobs.delete(req.id);
        return {};
      },
      findCached: async (req) => this.images.findCached(req.parent, req.containerConfigJson),
      buildBase: async (req) => this.images.buildBase(req.name),
      load: async (call, ctx) => {
        const result = await this.archive.load(clientBytes(call, (c) => c.data));
        ctx.log.info(result, 'loaded');
        return result;
      },
    };
  }
}
