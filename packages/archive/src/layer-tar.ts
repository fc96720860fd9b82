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
import { XATTR_PAX_PREFIX } from './pax-xattrs';
import { hostXattr } from './root-dir';
import { isOpaque, OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts';

const EPOCH = new Date(0);

/** The attributes Docker archives with a file: its capabilities, as a PAX record. */
function fileAttributes(abs: string): { pax?: Record<string, string> } {
  const cap = hostXattr(abs, 'security.capability');
  return cap ? { pax: { [`${XATTR_PAX_PREFIX}security.capability`]: cap.toString('latin1') } } : {};
}

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
  packTree(pack, dir, options, true)
    .then(() => pack.finalize())
    .catch((err) => pack.destroy(err));
  return pack as unknown as Readable;
}

/**
 * The exact size in bytes of layerTar(dir, exclude), found without reading
 * a file: the same walk packs every header (by the same encoder) with empty
 * contents, and each file's content is added as the 512-byte blocks it takes.
 * (A saved layer.tar needs its size in its own header before its first byte.)
 */
export async function layerTarSize(dir: string, exclude?: Set<string>): Promise<number> {
  const pack = tar.pack();
  let bytes = 0;
  const counting = (async () => {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) bytes += chunk.length;
  })();
  try {
    const contents = await packTree(pack, dir, { whiteouts: true, exclude }, false);
    pack.finalize();
    await counting;
    return bytes + contents;
  } catch (err) {
    pack.destroy(err as Error);
    await counting.catch(() => undefined);
    throw err;
  }
}

const BLOCK = 512;

/**
 * Packs the tree's entries into `pack`. With `contents` false, files are
 * packed as empty and the result is the bytes their contents would take.
 */
async function packTree(pack: tar.Pack, dir: string, options: TreeTarOptions, contents: boolean): Promise<number> {
  let skipped = 0;
  const add = (header: Partial<tar.Header> & { name: string }, body?: string) =>
    new Promise<void>((resolve, reject) => pack.entry(header as tar.Header, body ?? '', (err) => (err ? reject(err) : resolve())));
  const addFile = async (header: Partial<tar.Header> & { name: string; size: number }, abs: string) => {
    if (!contents) {
      skipped += Math.ceil(header.size / BLOCK) * BLOCK;
      return add({ ...header, size: 0 });
    }
    // The entry first: a pack already destroyed (its reader gone) fails here, before a file is opened.
    const entry = pack.entry({ ...header, type: 'file' } as tar.Header);
    // Opened without following a link and without blocking, and checked to be the regular file that
    // was listed: what a container swapped in meanwhile (a FIFO, a device) is never read.
    const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      if (!fs.fstatSync(fd).isFile()) throw new Error(`${header.name} is no longer a regular file`);
    } catch (err) {
      fs.closeSync(fd);
      entry.destroy(err as Error);
      throw err;
    }
    await pipeline(fs.createReadStream('', { fd }), entry);
  };
  /** Any entry but a directory: a link, a file, a device or a FIFO (sockets are not archived). */
  const addOther = async (name: string, abs: string, st: fs.Stats) => {
    const common = { uid: st.uid, gid: st.gid, mtime: st.mtime, mode: st.mode & 0o7777 };
    if (st.isSymbolicLink()) await add({ ...common, name, type: 'symlink', linkname: fs.readlinkSync(abs) });
    else if (st.isFile()) await addFile({ ...common, ...fileAttributes(abs), name, type: 'file', size: st.size }, abs);
    else if (st.isCharacterDevice() || st.isBlockDevice()) await add({ ...common, name, type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...deviceNumbers(st.rdev) });
    else if (st.isFIFO()) await add({ ...common, name, type: 'fifo' });
  };

  const top = fs.lstatSync(dir);
  if (!top.isDirectory()) {
    await addOther(options.prefix ?? path.basename(dir), dir, top);
    return skipped;
  }
  const prefix = options.prefix ? `${options.prefix.replace(/\/$/, '')}/` : '';
  if (prefix) await add({ name: prefix, type: 'directory', mode: top.mode & 0o7777, uid: top.uid, gid: top.gid, mtime: top.mtime });
  const seen = new Map<string, string>(); // dev:ino -> first path, for hard links

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
        if (options.whiteouts && isOpaque(abs)) await add({ name: `${entryName}/${OPAQUE_MARKER}`, type: 'file', size: 0, mode: 0o600, mtime: EPOCH, uid: 0, gid: 0 });
        await walk(childRel);
      } else if (st.isFile() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = seen.get(key);
        if (first) await add({ ...common, name: entryName, type: 'link', linkname: first });
        else {
          seen.set(key, entryName);
          await addOther(entryName, abs, st);
        }
      } else await addOther(entryName, abs, st);
    }
  };
  await walk('');
  return skipped;
}

/** Linux's major and minor numbers of a device (glibc's gnu_dev_major/minor: 12 + 20 bits split around the 8 + 12 low ones). */
function deviceNumbers(rdev: number): { devmajor: number; devminor: number } {
  const high = Math.floor(rdev / 2 ** 32);
  return { devmajor: ((rdev >>> 8) & 0xfff) | (high & ~0xfff), devminor: (rdev & 0xff) | ((rdev >>> 12) & ~0xff) };
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
