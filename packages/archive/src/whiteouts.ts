// Overlayfs' whiteouts in a layer directory: a deleted file is a 0/0
// character device, an opaque directory carries trusted.overlay.opaque=y.
// In a tar diff they are `.wh.NAME` files and a `.wh..wh..opq` entry.
import { hostXattr, type RootDir } from './root-dir';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** Creates overlay whiteouts (0/0 character devices) at these paths of the layer, where nothing else stands. */
export function makeWhiteouts(layer: RootDir, rels: string[]): void {
  for (const rel of rels) if (!layer.stat(rel)) layer.mknod(rel, 'character-device', 0, 0, 0);
}

/** Marks directories of the layer opaque for overlayfs. */
export function markOpaque(layer: RootDir, rels: string[]): void {
  // '' is the layer's top: every layer below is hidden (a layer that replaces all).
  for (const rel of rels) if (rel === '' || layer.stat(rel)?.isDirectory()) layer.setxattr(rel, OPAQUE_XATTR, Buffer.from('y'));
}

/** Whether a directory of a layer (a trusted host path) is opaque. */
export function isOpaque(dir: string): boolean {
  return hostXattr(dir, OPAQUE_XATTR)?.toString() === 'y';
}
