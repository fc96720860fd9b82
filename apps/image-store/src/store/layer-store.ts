// Layer directories. A layer is built in tmp/ and renamed into l/ only when
// complete, so a crash mid-import leaves nothing visible; start-up sweeps
// tmp/ and any layer directory no image refers to. Names are short because
// overlayfs takes every lower directory in one mount option.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeTree, removeTreeSoon } from '@stevedore/archive';
import { privateDir } from '@stevedore/service-kit';

export class LayerStore {
  readonly layerRoot: string;
  readonly tmpRoot: string;

  constructor(readonly root: string) {
    this.layerRoot = path.join(root, 'l');
    this.tmpRoot = path.join(root, 'tmp');
    // Private, as images/ is: a layer keeps its image's modes (setuid files, device nodes) for containers only.
    privateDir(this.layerRoot);
    privateDir(this.tmpRoot);
  }

  path(name: string): string {
    return path.join(this.layerRoot, name);
  }

  /** A new, empty directory to build a layer in. */
  begin(): { name: string; dir: string } {
    for (;;) {
      const name = randomBytes(5).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, 'x');
      const dir = path.join(this.tmpRoot, name);
      if (fs.existsSync(path.join(this.layerRoot, name))) continue;
      try {
        fs.mkdirSync(dir, { mode: 0o755 });
        return { name, dir };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  /** Makes a finished layer visible (an atomic rename). */
  finish(name: string): string {
    const target = this.path(name);
    fs.renameSync(path.join(this.tmpRoot, name), target);
    return target;
  }

  /** Throws away a layer being built. */
  abandon(name: string): void {
    removeTree(path.join(this.tmpRoot, name));
  }

  /** Removes a layer: renamed away first so that it vanishes at once. */
  remove(name: string): void {
    const trash = path.join(this.tmpRoot, `rm-${name}-${randomBytes(3).toString('hex')}`);
    try {
      fs.renameSync(this.path(name), trash);
    } catch {
      return;
    }
    // What fails here is left for the next start-up's sweep.
    removeTreeSoon(trash).catch(() => undefined);
  }

  /** Start-up: nothing half-built survives, and no layer without an image. */
  sweep(known: Set<string>): { removed: string[] } {
    const removed: string[] = [];
    for (const name of fs.readdirSync(this.tmpRoot)) {
      removeTree(path.join(this.tmpRoot, name));
      removed.push(`tmp/${name}`);
    }
    for (const name of fs.readdirSync(this.layerRoot)) {
      if (!known.has(name)) {
        removeTree(this.path(name));
        removed.push(`l/${name}`);
      }
    }
    return { removed };
  }
}
