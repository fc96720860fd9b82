// A container's files from outside: its changes (the writable layer against
// the image's layers), an export of the whole root filesystem, and copies of
// single paths in and out. A stopped container's root filesystem is mounted
// for the operation and unmounted after.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer, layerTar, resolveInRoot, statInRoot, treeTar, type PathStat } from '@stevedore/archive';
import { notFound, refused } from '@stevedore/errors';
import { isMounted, mountRootfs, rootfsPaths, unmountRootfs } from './rootfs';

/** Files the runtime puts in every container: not changes of the container's own. */
const RUNTIME_FILES = new Set(['/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/dev', '/proc', '/sys']);

export interface Change {
  path: string;
  kind: 0 | 1 | 2;
}

function existsBelow(layers: string[], rel: string): boolean {
  for (const layer of layers) {
    const p = path.join(layer, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    // A whiteout in a higher layer hides it.
    return !(st.isCharacterDevice() && st.rdev === 0);
  }
  return false;
}

/** `docker diff`: what the writable layer adds, changes and deletes. */
export function changes(containerDir: string, layers: string[]): Change[] {
  const { upper } = rootfsPaths(containerDir);
  const out: Change[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(upper, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const childRel = `${rel}/${e.name}`;
      if (RUNTIME_FILES.has(childRel)) continue;
      const st = fs.lstatSync(path.join(upper, childRel));
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ path: childRel, kind: 2 });
        continue;
      }
      out.push({ path: childRel, kind: existsBelow(layers, childRel) ? 0 : 1 });
      if (e.isDirectory()) walk(childRel);
    }
  };
  walk('');
  return out;
}

/** The mount points the runtime creates, left out of a commit (they would hide the image's own files). */
const COMMIT_EXCLUDES = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'dev', 'proc', 'sys']);

/** The writable layer as a tar diff. */
export function diffTar(containerDir: string): Readable {
  const { upper } = rootfsPaths(containerDir);
  if (!fs.existsSync(upper)) fs.mkdirSync(upper, { recursive: true });
  return layerTar(upper, COMMIT_EXCLUDES);
}

/** Runs `fn` with the root filesystem mounted, mounting it for the while if the container is stopped. */
export async function withRootfs<T>(containerDir: string, layers: string[], fn: (rootfs: string) => Promise<T>): Promise<T> {
  const { merged } = rootfsPaths(containerDir);
  if (isMounted(merged)) return fn(merged);
  await mountRootfs(containerDir, layers);
  try {
    return await fn(merged);
  } finally {
    await unmountRootfs(containerDir);
  }
}

/** A tar of a mounted root filesystem; `done` resolves when the stream has ended or failed. */
export function rootfsTar(rootfs: string): Readable {
  return treeTar(rootfs, { whiteouts: false });
}

export function statPath(rootfs: string, p: string): PathStat {
  return statInRoot(rootfs, p);
}

/** A path as a tar named by its base name (POST copy, GET archive). */
export function pathTar(rootfs: string, p: string): Readable {
  const host = resolveInRoot(rootfs, p, true);
  if (!fs.existsSync(host)) throw notFound(`Could not find the file ${p} in container`);
  const base = path.basename(path.resolve('/', p)) || path.basename(host);
  return treeTar(host, { whiteouts: false, prefix: base });
}

/** PUT archive: the tar is extracted into a directory of the container (confined to its root). */
export async function extractInto(rootfs: string, p: string, tarStream: Readable, makePath = false): Promise<void> {
  const dest = resolveInRoot(rootfs, p, true);
  // Every link on the way is resolved: what is missing below `dest` is made of real directories.
  if (makePath && !fs.existsSync(dest)) fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
  let st: fs.Stats;
  try {
    st = fs.statSync(dest);
  } catch {
    throw notFound(`Could not find the file ${p} in container`);
  }
  if (!st.isDirectory()) throw refused(`extraction point is not a directory: ${p}`);
  await applyLayer(tarStream, dest);
}
