// A layer directory as a tar diff (save, push, commit): the inverse of
// applyLayer. Overlay whiteouts become `.wh.NAME`, opaque directories get a
// `.wh..wh..opq` entry, hard links within the layer stay hard links.
// Entries are in a fixed order (sorted, depth first), so the same directory
// always gives the same bytes. File contents are streamed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { findOpaque, OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts';

const EPOCH = new Date(0);

export interface TreeTarOptions {
  /** Overlay whiteouts and opaque directories become Docker's `.wh.` entries (a layer diff). */
  whiteouts: boolean;
  /** Entry names start with this (a copied path's base name). */
  prefix?: string;
  /** Paths (relative, no leading '/') left out with everything below them. */
  exclude?: Set<string>;
}

/** A layer directory as a tar diff. */
export function layerTar(dir: string, exclude?: Set<string>): Readable {
  return treeTar(dir, { whiteouts: true, exclude });
}

/** A file or directory tree as a tar: a file as one entry, a directory with everything below it. */
export function treeTar(dir: string, options: TreeTarOptions): Readable {
  const pack = tar.pack();
  const prefix = options.prefix ? `${options.prefix.replace(/\/$/, '')}/` : '';
  void (async () => {
    const top = fs.lstatSync(dir);
    if (!top.isDirectory()) {
      const name = options.prefix ?? path.basename(dir);
      const common = { uid: top.uid, gid: top.gid, mtime: top.mtime, mode: top.mode & 0o7777 };
      if (top.isSymbolicLink()) {
        pack.entry({ ...common, name, type: 'symlink', linkname: fs.readlinkSync(dir) } as tar.Header);
      } else {
        await pipeline(fs.createReadStream(dir), pack.entry({ ...common, name, type: 'file', size: top.size } as tar.Header));
      }
      pack.finalize();
      return;
    }
    const opaque = options.whiteouts ? await findOpaque(dir) : new Set<string>();
    if (prefix) await new Promise<void>((resolve, reject) => pack.entry({ name: prefix, type: 'directory', mode: top.mode & 0o7777, uid: top.uid, gid: top.gid, mtime: top.mtime } as tar.Header, (err) => (err ? reject(err) : resolve())));
    const seen = new Map<string, string>(); // dev:ino -> first path, for hard links
    const add = (header: Partial<tar.Header> & { name: string }, body?: string) =>
      new Promise<void>((resolve, reject) => pack.entry(header as tar.Header, body ?? "", (err) => (err ? reject(err) : resolve())));

    const walk = async (rel: string): Promise<void> => {
      const names = fs.readdirSync(path.join(dir, rel)).sort();
      for (const name of names) {
        const childRel = rel ? `${rel}/${name}` : name;
        if (options.exclude?.has(childRel)) continue;
        const entryName = `${prefix}${childRel}`;
        const abs = path.join(dir, childRel);
        const st = fs.lstatSync(abs);
        const common = { uid: st.uid, gid: st.gid, mtime: st.mtime, mode: st.mode & 0o7777 };
        if (options.whiteouts && st.isCharacterDevice() && st.rdev === 0) {
          await add({ name: `${prefix}${rel ? `${rel}/` : ''}${WHITEOUT_PREFIX}${name}`, type: 'file', size: 0, mode: 0o600, mtime: EPOCH, uid: 0, gid: 0 });
        } else if (st.isDirectory()) {
          await add({ ...common, name: `${entryName}/`, type: 'directory' });
          if (opaque.has(abs)) await add({ name: `${entryName}/${OPAQUE_MARKER}`, type: 'file', size: 0, mode: 0o600, mtime: EPOCH, uid: 0, gid: 0 });
          await walk(childRel);
        } else if (st.isSymbolicLink()) {
          await add({ ...common, name: entryName, type: 'symlink', linkname: fs.readlinkSync(abs) });
        } else if (st.isFile()) {
          const key = `${st.dev}:${st.ino}`;
          const first = st.nlink > 1 ? seen.get(key) : undefined;
          if (first) {
            await add({ ...common, name: entryName, type: 'link', linkname: first });
            continue;
          }
          if (st.nlink > 1) seen.set(key, entryName);
          const entry = pack.entry({ ...common, name: entryName, type: 'file', size: st.size } as tar.Header);
          await pipeline(fs.createReadStream(abs), entry);
        } else if (st.isCharacterDevice() || st.isBlockDevice()) {
          await add({ ...common, name: entryName, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: Math.floor(st.rdev / 256), devminor: st.rdev % 256 });
        } else if (st.isFIFO()) {
          await add({ ...common, name: entryName, type: 'fifo' });
        }
        // sockets are not archived
      }
    };
    await walk('');
    pack.finalize();
  })().catch((err) => pack.destroy(err));
  return pack as unknown as Readable;
}

/** Bytes of file content in a layer directory. */
export function layerSize(dir: string): number {
  let size = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) size += fs.lstatSync(p).size;
    }
  };
  walk(dir);
  return size;
}
