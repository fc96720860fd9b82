// A container's root filesystem: overlayfs over its image's layers, with a
// writable layer of its own. Lower directories are given relative to their
// common parent (the mount runs there), so that a long chain of layers fits
// in the mount option.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { refused } from '@stevedore/errors';

const run = promisify(execFile);

export interface RootfsPaths {
  upper: string;
  work: string;
  merged: string;
}

export function rootfsPaths(containerDir: string): RootfsPaths {
  return { upper: path.join(containerDir, 'upper'), work: path.join(containerDir, 'work'), merged: path.join(containerDir, 'rootfs') };
}

export function isMounted(dir: string): boolean {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

/** Mounts the root filesystem; `layers` top first. */
export async function mountRootfs(containerDir: string, layers: string[]): Promise<RootfsPaths> {
  const p = rootfsPaths(containerDir);
  for (const d of [p.upper, p.work, p.merged]) fs.mkdirSync(d, { recursive: true });
  if (isMounted(p.merged)) return p;
  const parents = new Set(layers.map((l) => path.dirname(l)));
  let cwd = '/';
  let lower = layers;
  if (parents.size === 1) {
    cwd = [...parents][0];
    lower = layers.map((l) => path.basename(l));
  }
  // An image with one empty layer still needs a lower directory.
  if (lower.length === 0) throw refused('The image has no layers');
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')},upperdir=${p.upper},workdir=${p.work}`, p.merged], { cwd });
  } catch (err) {
    throw refused(`Cannot mount the container's root filesystem: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
  return p;
}

export async function unmountRootfs(containerDir: string): Promise<void> {
  const { merged } = rootfsPaths(containerDir);
  if (!isMounted(merged)) return;
  try {
    await run('umount', [merged]);
  } catch {
    await run('umount', ['-l', merged]).catch(() => undefined);
  }
}
