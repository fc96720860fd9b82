// Paths inside a container's root filesystem, resolved as the container
// sees them: symbolic links are followed relative to the root, and `..`
// never climbs above it. Nothing outside the root is ever named.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { notFound, refused } from '@stevedore/errors';

const MAX_LINKS = 40;

/** The host path of `p` inside `root`; the last component's link is followed unless `followLast` is false. */
export function resolveInRoot(root: string, p: string, followLast = true): string {
  const parts = p.split('/').filter((x) => x && x !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw refused(`Too many levels of symbolic links in ${p}`);
      const target = fs.readlinkSync(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter((x) => x && x !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

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
  const host = resolveInRoot(root, p, false);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(host);
  } catch {
    throw notFound(`Could not find the file ${p} in container`);
  }
  const linkTarget = st.isSymbolicLink() ? path.join('/', path.relative(root, resolveInRoot(root, p, true))) : '';
  return { name: path.basename(p) || '/', size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget };
}
