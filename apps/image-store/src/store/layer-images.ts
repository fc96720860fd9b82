// Layer images: a layer extracted from a tar stream, then registered as an
// image of Docker 1.0's model (that layer and a parent). Import, commit,
// both layouts of load and pull write them here, each operation as one
// write that is kept whole or undone whole: when the operation fails, no
// layer directory, image or tag of it remains (as a failed `docker load`
// leaves nothing in Docker).
import type { Readable } from 'node:stream';
import { applyLayer } from '@stevedore/archive';
import type { StoredImage } from '@stevedore/docker-api';
import type { BlobRow, ImageDb, SetTag } from './image-db';
import type { LayerStore } from './layer-store';

export type LayerOptions = NonNullable<Parameters<typeof applyLayer>[2]>;

/** A layer extracted into its directory, not yet visible. */
export interface BuiltLayer {
  /** The layer directory's name. */
  readonly name: string;
  /** Bytes of file content. */
  readonly size: number;
  /** sha256 of the tar as read, '' when not computed. */
  readonly digest: string;
  readonly entries: number;
}

export interface RegisterOptions {
  /** Tagged in the transaction that registers the image. */
  tag?: { repo: string; tag: string };
  /** The registry blob the layer came from (a pull). */
  blob?: Omit<BlobRow, 'image_id'>;
}

/** Images registered by writes still running, each with the writes that count on it. */
type Provisional = Map<string, Set<LayerImageWrite>>;

export class LayerImages {
  private readonly provisional: Provisional = new Map();

  constructor(
    readonly db: ImageDb,
    readonly layers: LayerStore,
  ) {}

  /**
   * Runs one operation's writes: kept when `work` resolves; when it throws,
   * its layers and the images it registered are removed, then the error
   * goes on. Tags other than `register`'s belong at the end of `work`.
   */
  async write<T>(work: (w: LayerImageWrite) => Promise<T>): Promise<T> {
    const w = new LayerImageWrite(this.db, this.layers, this.provisional);
    let result: T;
    try {
      result = await work(w);
    } catch (err) {
      try {
        w.end(false);
      } catch {
        // The operation's own error is the one to report; layers left behind go at the next start-up's sweep.
      }
      throw err;
    }
    w.end(true);
    return result;
  }
}

export class LayerImageWrite {
  private ended = false;
  /** Layers extracted and not registered: removed when the write ends. */
  private readonly built = new Set<string>();
  /** Images this write registered or counts on, in that order. */
  private readonly held: string[] = [];
  /** Tags this write set. */
  private readonly tags: SetTag[] = [];

  constructor(
    private readonly db: ImageDb,
    private readonly layers: LayerStore,
    private readonly provisional: Provisional,
  ) {}

  /**
   * Whether the image exists. One that another running write registered is
   * then this write's too: it stays if either write is kept.
   */
  has(id: string): boolean {
    if (!this.db.get(id)) return false;
    const holders = this.provisional.get(id);
    if (holders && !holders.has(this)) {
      holders.add(this);
      this.held.push(id);
    }
    return true;
  }

  /** Extracts a tar stream into a new layer directory; a failure, or the write ending meanwhile, removes it. */
  async build(input: Readable, options: LayerOptions = {}): Promise<BuiltLayer> {
    this.checkOpen();
    const { name, dir } = this.layers.begin();
    try {
      const applied = await applyLayer(input, dir, options);
      this.checkOpen();
      this.built.add(name);
      return { name, size: applied.size, digest: applied.digest, entries: applied.entries };
    } catch (err) {
      this.layers.abandon(name);
      throw err;
    }
  }

  /**
   * Makes a built layer visible and registers it as the image `meta`
   * describes (its Size the layer's); the image row, tag and blob in one
   * transaction. If that fails, the layer goes.
   */
  register(layer: BuiltLayer, meta: StoredImage, options: RegisterOptions = {}): void {
    this.checkOpen();
    if (!this.built.delete(layer.name)) throw new Error(`Layer ${layer.name} is not one this write built, or is registered already`);
    try {
      this.layers.finish(layer.name);
    } catch (err) {
      this.layers.abandon(layer.name);
      throw err;
    }
    const { tag } = options;
    const previous = tag && this.db.getTag(tag.repo, tag.tag)?.image_id;
    try {
      this.db.registerImage(
        {
          id: meta.id,
          parent: meta.parent || null,
          created: Date.parse(meta.created) || Date.now(),
          size: layer.size,
          layer: layer.name,
          source_digest: layer.digest || null,
          meta: JSON.stringify({ ...meta, Size: layer.size }),
        },
        options,
      );
    } catch (err) {
      this.layers.remove(layer.name);
      throw err;
    }
    this.provisional.set(meta.id, new Set([this]));
    this.held.push(meta.id);
    if (tag) this.tags.push({ repo: tag.repo, tag: tag.tag, image_id: meta.id, previous });
  }

  /** The end of the write: kept, or undone (see LayerImages.write). Unregistered layers go either way. */
  end(keep: boolean): void {
    if (this.ended) return;
    this.ended = true;
    for (const name of this.built) this.layers.abandon(name);
    this.built.clear();
    const undone: string[] = [];
    for (const id of [...this.held].reverse()) {
      const holders = this.provisional.get(id);
      if (!holders) continue;
      holders.delete(this);
      // Kept: the image is part of a finished operation. Undone: it goes once no running write counts on it.
      if (keep) this.provisional.delete(id);
      else if (holders.size === 0) {
        this.provisional.delete(id);
        undone.push(id);
      }
    }
    // An image that gained a tag, a child or a user meanwhile is someone else's now: it stays.
    for (const row of this.db.undoRegistrations(undone, this.tags)) this.layers.remove(row.layer);
  }

  private checkOpen(): void {
    if (this.ended) throw new Error('The operation writing this layer has ended');
  }
}
