// For unit tests: the image store's database, layer store and layer images
// on a temporary directory, with what a test asserts on (the layer
// directories left, the rows), and tar streams to feed it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { ImageDb } from './image-db';
import { LayerImages } from './layer-images';
import { LayerStore } from './layer-store';

export interface ScratchStore {
  dir: string;
  db: ImageDb;
  layers: LayerStore;
  layerImages: LayerImages;
  /** Layer directories, visible (l/) and being built or removed (tmp/), once removals in flight are done. */
  layerDirs(): Promise<{ visible: string[]; building: string[] }>;
  close(): void;
}

export function scratchStore(): ScratchStore {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-store-'));
  const db = new ImageDb(path.join(dir, 'images.db'));
  const layers = new LayerStore(dir);
  return {
    dir,
    db,
    layers,
    layerImages: new LayerImages(db, layers),
    async layerDirs() {
      // A removed layer is renamed into tmp/ at once and deleted soon after.
      for (let i = 0; i < 100 && fs.readdirSync(layers.tmpRoot).some((n) => n.startsWith('rm-')); i++) await new Promise((r) => setTimeout(r, 10));
      return { visible: fs.readdirSync(layers.layerRoot).sort(), building: fs.readdirSync(layers.tmpRoot).sort() };
    },
    close() {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A tar of files named with their content. */
export async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mode: 0o644 }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A stream that gives the first `bytes` of `data`, then fails (a connection lost half-way). */
export function failingHalfWay(data: Buffer, bytes: number): Readable {
  return Readable.from(
    (async function* () {
      yield data.subarray(0, bytes);
      await new Promise((r) => setImmediate(r));
      throw new Error('connection lost');
    })(),
  );
}
