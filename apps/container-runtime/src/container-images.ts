// The image store as containers use it: the image a container is made from
// and its layers at each start, and the store's record of which container
// uses which image (kept right by image-use.ts when a call is lost).
import type { HeldImages } from '@stevedore/cluster';
import type { images } from '@stevedore/contracts';
import { asStevedoreError, StevedoreError } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import type { ServiceClient } from '@stevedore/service-kit';
import { ImageUseReconciler, type ImageUseCalls } from './image-use';
import type { LayerCache } from './layer-cache';
import type { ContainerDb, ContainerRow } from './store/container-db';

/** Every container's use of its image, as the records say; one being started counts as running (the store heard so). */
export function imageUseAccount(db: ContainerDb, starting: (id: string) => boolean): images.ImageUse[] {
  return db.all().map((r) => ({ user: r.id, image: r.image_id, running: r.status === 'running' || starting(r.id) }));
}

/** The image store's client, as far as containers use it (connectService's, or a fake in tests). */
export type ImageStoreCalls = Pick<ServiceClient<typeof images.ImageStoreService>, 'useImage' | 'releaseImage' | 'imageNames' | 'inspect' | 'close'> & ImageUseCalls;

/**
 * The layers (top first) with each digest kept at its topmost place only:
 * overlayfs refuses a directory twice among its lower ones, and a layer of
 * no entries is in most chains many times (every #(nop) build step commits
 * one, all of one digest). Leaving out a lower copy changes nothing: every
 * path it holds, whiteouts too, the upper copy holds the same and hides.
 */
export function topmostOfEach(refs: images.LayerRef[]): images.LayerRef[] {
  const seen = new Set<string>();
  return refs.filter((r) => !seen.has(r.digest) && Boolean(seen.add(r.digest)));
}

export class ContainerImages {
  private readonly reconciler: ImageUseReconciler;

  constructor(
    private readonly client: ImageStoreCalls,
    /** Every container's use of its image, from the records as they are now. */
    account: () => images.ImageUse[],
    log: Logger,
    /**
     * A cluster's node: its name, its cache of the layers it fetches from
     * the store (whose directories are on another host), and the record of
     * the images whose layers it holds (for the build farm's placement).
     */
    private readonly node?: { name: string; layers: LayerCache; held?: Pick<HeldImages, 'add'> },
  ) {
    this.reconciler = new ImageUseReconciler(client, account, log, node?.name);
  }

  /** Reconciles image use now, and whenever the connection to the store becomes ready again. */
  start(): void {
    this.reconciler.start();
  }

  close(): void {
    this.reconciler.close();
    this.client.close();
    this.node?.layers.close();
  }

  /** Runs a change of image use: a call to the store with the record it goes with (image-use.ts). */
  change<T>(fn: () => Promise<T>): Promise<T> {
    return this.reconciler.change(fn);
  }

  /** A change of image use begins; it ends when the function returned is called. */
  begin(): Promise<() => void> {
    return this.reconciler.begin();
  }

  /** Records that container `user` uses `image` (running or not); answers with the image and its layers' directories on this host. */
  async use(image: string, user: string, running: boolean, requestId: string): Promise<images.UseImageResponse> {
    const node = this.node;
    const use = await this.answer(this.client.useImage({ image, user, running, node: node?.name ?? '', byDigest: Boolean(node) }, { requestId, timeoutMs: node ? 60_000 : undefined }));
    if (!node) return use;
    const layers = await node.layers.dirs(topmostOfEach(use.layerRefs));
    // Only a hint for placement: a lost record costs a build a fetch, not a failure.
    void node.held?.add(node.name, use.id).catch(() => undefined);
    return { ...use, layers };
  }

  async release(user: string, requestId: string): Promise<void> {
    await this.answer(this.client.releaseImage({ user }, { requestId }));
  }

  /** The image layers under a container (top first). */
  async layersOf(row: ContainerRow, requestId: string): Promise<string[]> {
    return (await this.use(row.image_id, row.id, row.status === 'running', requestId)).layers;
  }

  /** The names images are shown by, by ID. */
  async names(ids: string[], requestId: string): Promise<Record<string, string>> {
    return (await this.answer(this.client.imageNames({ ids }, { requestId }))).names;
  }

  /** An image's size with its parents'; undefined when the store does not answer with it. */
  async virtualSize(id: string, requestId: string): Promise<number | undefined> {
    const r = await this.answer(this.client.inspect({ name: id }, { requestId })).catch(() => undefined);
    return r?.virtualSize;
  }

  /** The store's answer; a call it may not have received is reported as such, and image use reconciled. */
  private answer<Res>(call: Promise<Res>): Promise<Res> {
    return call.catch((err) => {
      const e = asStevedoreError(err);
      if (e.kind !== 'internal' && e.kind !== 'unavailable') throw e;
      // The call may or may not have been recorded: image use is reconciled once the store answers.
      this.reconciler.request();
      // A store that could not be reached (or did not answer in time) is named by the client already.
      if (e.kind === 'unavailable') throw e;
      throw new StevedoreError('unavailable', `Cannot reach the image-store service: ${e.message}`);
    });
  }
}
