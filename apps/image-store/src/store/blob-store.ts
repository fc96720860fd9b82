// Build contexts on their way from the API edge to a build worker: written
// whole to a temporary name and renamed (a blob is complete or absent),
// streamed back on request, deleted after the build. Blobs a build never
// fetched (the queue lost its job, the edge died) go after a day.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { invalid, notFound } from '@stevedore/errors';
import { privateDir } from '@stevedore/service-kit';

const MAX_AGE_MS = 24 * 3600 * 1000;

export class BlobStore {
  constructor(readonly dir: string) {
    privateDir(dir);
    const now = Date.now();
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name);
      if (name.startsWith('.') || now - fs.statSync(file).mtimeMs > MAX_AGE_MS) fs.rmSync(file, { force: true });
    }
  }

  private file(id: string): string {
    if (!/^[0-9a-f]{32}$/.test(id)) throw invalid(`Invalid blob ID: ${JSON.stringify(id)}`);
    return path.join(this.dir, id);
  }

  /** Stores a stream; the blob exists only once all of it is written. */
  async put(data: Readable): Promise<string> {
    const id = randomBytes(16).toString('hex');
    const partial = path.join(this.dir, `.${id}`);
    try {
      await pipeline(data, fs.createWriteStream(partial, { mode: 0o600 }));
      fs.renameSync(partial, this.file(id));
    } catch (err) {
      fs.rmSync(partial, { force: true });
      throw err;
    }
    return id;
  }

  read(id: string): Readable {
    const file = this.file(id);
    if (!fs.existsSync(file)) throw notFound(`No such build context: ${id}`);
    return fs.createReadStream(file, { highWaterMark: 256 * 1024 });
  }

  delete(id: string): void {
    fs.rmSync(this.file(id), { force: true });
  }
}
