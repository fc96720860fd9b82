// A container's files from outside: its changes (the writable layer against
// the init layer and the image's layers), an export of the whole root
// filesystem, and copies of single paths in and out. A stopped container's
// root filesystem is mounted for the operation and unmounted after.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer, layerTar, relInRoot, RootDir, statInRoot, treeTar, type PathStat } from '@stevedore/archive';
import { notFound, refused } from '@stevedore/errors';
import { isMounted, lookupInLayers, mountRootfs, rootfsPaths, unmountRootfs } from './rootfs';

/**
 * What the runtime put in the writable layer of a container made before init
 * layers existed (its mount points, when the image lacked them). Such a
 * container has no init directory until its next mount, which takes these out
 * of the layer (rootfs.ts's dropRuntimeMountPoints); until then — stopped, or
 * still running on a mount made before the upgrade — they are left out of its
 * diff and commit, as they always were. A container with an init layer needs
 * no filter: the runtime creates nothing in its writable layer.
 */
const LEGACY_RUNTIME_FILES = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'dev', 'proc', 'sys'];

export interface Change {
  path: string;
  kind: 0 | 1 | 2;
}

/**
 * `docker diff`: what the writable layer adds, changes and deletes, against
 * everything below it (the init layer and the image's layers), as Docker 1.0
 * compared a container's layer with its parents, `<id>-init` among them.
 */
export function changes(containerDir: string, layers: string[]): Change[] {
  const { upper, init } = rootfsPaths(containerDir);
  const hasInit = fs.existsSync(init);
  const below = hasInit ? [init, ...layers] : layers;
  const legacy = new Set(hasInit ? [] : LEGACY_RUNTIME_FILES.map((f) => `/${f}`));
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
      if (legacy.has(childRel)) continue;
      const st = fs.lstatSync(path.join(upper, childRel));
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ path: childRel, kind: 2 });
        continue;
      }
      out.push({ path: childRel, kind: lookupInLayers(below, childRel) ? 0 : 1 });
      if (e.isDirectory()) walk(childRel);
    }
  };
  walk('');
  return out;
}

/**
 * The writable layer as a tar diff (commit). The init layer is below it, so
 * its files are never part of a commit; `docker export`, a tar of the mounted
 * root filesystem, has them (empty /etc/hosts, /.dockerenv, ...), as Docker
 * 1.0's export had its init layer's.
 */
export function diffTar(containerDir: string): Readable {
  const { upper, init } = rootfsPaths(containerDir);
  if (!fs.existsSync(upper)) fs.mkdirSync(upper, { recursive: true });
  return layerTar(upper, fs.existsSync(init) ? undefined : new Set(LEGACY_RUNTIME_FILES));
}

/** A stopped container's root filesystem mounted for operations on it: the last one to end unmounts it. */
interface RootfsHold {
  users: number;
  mounted: Promise<unknown>;
  unmounting?: Promise<void>;
}

const holds = new Map<string, RootfsHold>();

/**
 * Runs `fn` with the root filesystem mounted, mounting it for the while if
 * the container is stopped. Operations on one stopped container at once
 * share the mount (the first mounts it, the last unmounts it): each mounting
 * and unmounting its own, one unmounted the root under another's copy.
 */
export async function withRootfs<T>(containerDir: string, layers: string[], fn: (rootfs: string) => Promise<T>): Promise<T> {
  const { merged } = rootfsPaths(containerDir);
  let hold = holds.get(containerDir);
  while (hold?.unmounting) {
    await hold.unmounting;
    hold = holds.get(containerDir);
  }
  if (!hold) {
    // Mounted, and not by an operation: the container runs (its exit unmounts it).
    if (isMounted(merged)) return fn(merged);
    hold = { users: 0, mounted: mountRootfs(containerDir, layers) };
    holds.set(containerDir, hold);
  }
  const mine = hold;
  mine.users++;
  try {
    await mine.mounted;
    return await fn(merged);
  } finally {
    if (--mine.users === 0) {
      mine.unmounting = unmountRootfs(containerDir).finally(() => holds.delete(containerDir));
      await mine.unmounting;
    }
  }
}

/** A tar of a mounted root filesystem; `done` resolves when the stream has ended or failed. */
export function rootfsTar(rootfs: string): Readable {
  return treeTar(rootfs, { whiteouts: false });
}

export function statPath(rootfs: string, p: string): PathStat {
  return statInRoot(rootfs, p);
}

/** A path as a tar named by its base name (POST copy, GET archive); the path is resolved inside the root. */
export function pathTar(rootfs: string, p: string): Readable {
  const host = RootDir.with(rootfs, (root) => (root.stat(relInRoot(p), true) ? root.hostPathOf(relInRoot(p)) : undefined));
  if (!host) throw notFound(`Could not find the file ${p} in container`);
  const base = path.basename(path.resolve('/', p)) || path.basename(host);
  return treeTar(host, { whiteouts: false, prefix: base });
}

/** PUT archive: the tar is extracted into a directory of the container, every name resolved inside its root. */
export async function extractInto(rootfs: string, p: string, tarStream: Readable, makePath = false): Promise<void> {
  const under = RootDir.with(rootfs, (root) => {
    const rel = relInRoot(p);
    // What is missing below the path is made of real directories (links on the way followed inside the root).
    if (makePath && !root.stat(rel, true)) root.mkdirAll(rel, 0o755);
    const st = root.stat(rel, true);
    if (!st) throw notFound(`Could not find the file ${p} in container`);
    if (!st.isDirectory()) throw refused(`extraction point is not a directory: ${p}`);
    return path.relative(root.hostPathOf(''), root.hostPathOf(rel));
  });
  await applyLayer(tarStream, rootfs, { under });
}
