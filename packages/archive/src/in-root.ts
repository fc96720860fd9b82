// Paths inside a container's root filesystem, resolved as the container
// sees them, by the kernel (RootDir): symbolic links are followed relative
// to the root, and `..` never climbs above it. Nothing outside the root is
// ever named.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { notFound } from '@stevedore/errors';
import { relInRoot, RootDir } from './root-dir';

/** Go's os.FileMode bits, which today's CLI decodes from X-Docker-Container-Path-Stat. */
export function goFileMode(st: fs.Stats): number {
  let mode = st.mode & 0o777;
  if (st.isDirectory()) mode |= 2 ** 31;
  if (st.isSymbolicLink()) mode |= 2 ** 27;
  if (st.isBlockDevice()) mode |= 2 ** 26;
  if (st.isCharacterDevice()) mode |= 2 ** 26 + 2 ** 21;
  if (st.isFIFO()) mode |= 2 ** 25;
  if (st.isSocket()) mode |= 2 ** 24;
  if (st.mode & 0o4000) mode |= 2 ** 23;
  if (st.mode & 0o2000) mode |= 2 ** 22;
  if (st.mode & 0o1000) mode |= 2 ** 20;
  // Bitwise operators work on signed 32 bits: the directory bit made it negative.
  return mode >>> 0;
}

export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

export function statInRoot(root: string, p: string): PathStat {
  return RootDir.with(root, (dir) => {
    const rel = relInRoot(p);
    const st = dir.stat(rel);
    if (!st) throw notFound(`Could not find the file ${p} in container`);
    let linkTarget = '';
    if (st.isSymbolicLink()) {
      try {
        linkTarget = path.join('/', path.relative(dir.hostPathOf(''), dir.hostPathOf(rel, true)));
      } catch {
        linkTarget = fs.readlinkSync(dir.hostPathOf(rel, false)); // a link to nothing: its text
      }
    }
    return { name: path.basename(p) || '/', size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget };
  });
}
