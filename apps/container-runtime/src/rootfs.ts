// A container's root filesystem: overlayfs over its image's layers, with a
// writable layer of its own. Lower directories are given relative to their
// common parent (the mount runs there), so that a long chain of layers fits
// in the mount option.
//
// Between the image's layers and the writable layer sits the container's
// init layer (Docker 1.0's `<id>-init`): a directory of the container's own,
// owned by root, holding the mount points the runtime needs (/etc/hosts,
// /etc/hostname, /etc/resolv.conf, /dev, /proc, /sys, ...). As the topmost
// lower directory it is part of the image as far as the container can tell:
// the runtime finds its mount points there and creates nothing in the
// writable layer, so `diff` and `commit` see only what the container did.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { isOpaque } from '@stevedore/archive';
import { refused } from '@stevedore/errors';

const run = promisify(execFile);

export interface RootfsPaths {
  upper: string;
  work: string;
  merged: string;
  /** The init layer: the runtime's mount points, the topmost lower directory. */
  init: string;
}

export function rootfsPaths(containerDir: string): RootfsPaths {
  return { upper: path.join(containerDir, 'upper'), work: path.join(containerDir, 'work'), merged: path.join(containerDir, 'rootfs'), init: path.join(containerDir, 'init') };
}

export function isMounted(dir: string): boolean {
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * What a stack of layer directories (top first) shows at `rel`, as overlayfs
 * looks it up: the topmost entry, or undefined when the path is absent,
 * whited out, or below something that is not a directory. Every component is
 * lstat'ed and only real directories are entered: a link in a layer is never
 * followed (it would lead out of the layer, onto the host). Opaque
 * directories are not consulted (an entry they hide may be reported).
 */
export function lookupInLayers(layers: string[], rel: string): fs.Stats | undefined {
  const parts = rel.split('/').filter(Boolean);
  if (parts.length === 0) return undefined;
  for (const layer of layers) {
    let at = layer;
    for (let i = 0; i < parts.length; i++) {
      at = path.join(at, parts[i]);
      const st = lstat(at);
      if (!st) break; // not in this layer: the next one down
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // a whiteout
      if (i === parts.length - 1) return st;
      if (!st.isDirectory()) return undefined; // a file or a link hides everything below its name
    }
  }
  return undefined;
}

/**
 * The init layer's contents: Docker 1.0's SetupInitLayer (graph.go), the same
 * paths. /.dockerinit and /.dockerenv stay empty files here (Docker
 * bind-mounted its dockerinit binary and the environment over them; Stevedore
 * mounts nothing there, and today's tools look for /.dockerenv to know they
 * run in a container). Directories are listed parents first.
 */
const INIT_DIRS = ['dev', 'dev/pts', 'dev/shm', 'proc', 'sys', 'etc'];
const INIT_FILES = ['.dockerinit', '.dockerenv', 'dev/console', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf'];
const INIT_LINKS: Array<[string, string]> = [['etc/mtab', '/proc/mounts']];

/**
 * Fills `dir` (new, empty) with the init layer. Its directories take the
 * mode, owner and times of the image's directory at the same path when the
 * image has one, so that /etc and /dev look as the image made them (and a
 * copy-up into the writable layer, hence a commit, carries the image's
 * attributes); elsewhere they are 0755 and root's. Files are empty, 0644.
 *
 * Hostile images: whatever the image has at these paths — /etc as a link to
 * / or anywhere, /etc/hosts as a link, a FIFO or a directory, /dev or /proc
 * as a link — the init layer's real directories and empty regular files sit
 * above it. Overlayfs stops merging at the first non-directory below a
 * directory, so the image's link or FIFO is hidden, and the runtime (runc,
 * crun) resolves its mount targets (/etc/hosts, /proc, /dev, ...) inside the
 * init layer's own files, never through a path the image chose. Only the
 * container's own writable layer is above it, and what a container does to
 * itself there the runtime resolves confined to the root filesystem.
 */
function buildInitLayer(dir: string, layers: string[]): void {
  fs.mkdirSync(dir, { mode: 0o755 });
  for (const d of INIT_DIRS) fs.mkdirSync(path.join(dir, d), { mode: 0o755 });
  for (const f of INIT_FILES) {
    const p = path.join(dir, f);
    fs.writeFileSync(p, '', { flag: 'wx' });
    fs.chmodSync(p, 0o644);
  }
  for (const [link, target] of INIT_LINKS) fs.symlinkSync(target, path.join(dir, link));
  // Deepest first: setting a directory's times must come after its entries were made.
  for (const d of [...INIT_DIRS].reverse()) {
    const p = path.join(dir, d);
    const image = lookupInLayers(layers, d);
    if (image?.isDirectory()) {
      fs.chownSync(p, image.uid, image.gid);
      fs.chmodSync(p, image.mode & 0o7777); // after chown, which clears setuid and setgid bits
      fs.utimesSync(p, image.atime, image.mtime);
    } else {
      fs.chownSync(p, 0, 0);
      fs.chmodSync(p, 0o755);
    }
  }
  fs.chownSync(dir, 0, 0);
  fs.chmodSync(dir, 0o755);
}

/**
 * A container made before init layers existed: its runtime created the
 * missing mount points in the writable layer itself (empty /etc/hosts,
 * /etc/hostname, /etc/resolv.conf files, empty /dev, /proc, /sys
 * directories, and /etc copied up or made to hold them). They are taken out
 * before its first mount with an init layer, which now provides them, so
 * that its diff and commits are as clean as a new container's. Only entries
 * exactly as the runtime left them go: empty, single-link regular files;
 * empty, non-opaque directories with the attributes the init layer gives the
 * same path. A link in the writable layer is never followed.
 */
function dropRuntimeMountPoints(upper: string, init: string): void {
  const etc = lstat(path.join(upper, 'etc'));
  if (etc?.isDirectory()) {
    for (const f of ['hostname', 'hosts', 'resolv.conf']) {
      const p = path.join(upper, 'etc', f);
      const st = lstat(p);
      if (st?.isFile() && st.size === 0 && st.nlink === 1) fs.rmSync(p);
    }
  }
  for (const d of ['dev', 'proc', 'sys', 'etc']) {
    const p = path.join(upper, d);
    const st = lstat(p);
    const ours = lstat(path.join(init, d));
    if (!st?.isDirectory() || !ours || fs.readdirSync(p).length > 0) continue;
    if ((st.mode & 0o7777) !== (ours.mode & 0o7777) || st.uid !== ours.uid || st.gid !== ours.gid) continue;
    if (isOpaque(p)) continue;
    fs.rmdirSync(p);
  }
}

/**
 * The container's init layer, made when missing: at the first mount of a new
 * container, and of a container made before init layers existed (see
 * dropRuntimeMountPoints). It is built aside and renamed into place, so that
 * an interrupted build leaves no half layer.
 */
export async function ensureInitLayer(containerDir: string, layers: string[]): Promise<string> {
  const { init, upper } = rootfsPaths(containerDir);
  if (fs.existsSync(init)) return init;
  const tmp = path.join(containerDir, `init-${randomBytes(4).toString('hex')}`);
  try {
    buildInitLayer(tmp, layers);
    if (fs.existsSync(upper)) dropRuntimeMountPoints(upper, tmp);
    fs.renameSync(tmp, init);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // Another mount made it meanwhile (a rename onto a full directory fails).
    if (!fs.existsSync(init)) throw err;
  }
  return init;
}

/** The mount option's limit (one page, with its terminating NUL, for mount(2)). */
const MOUNT_OPTIONS_MAX = 4095;

/** The overlay mount's option string, and the directory the mount runs in (lower directories are relative to it). */
export function overlayOptions(p: RootfsPaths, layers: string[]): { options: string; cwd: string } {
  // An image with one empty layer still needs a lower directory.
  if (layers.length === 0) throw refused('The image has no layers');
  const parents = new Set(layers.map((l) => path.dirname(l)));
  let cwd = '/';
  let lower = layers;
  if (parents.size === 1) {
    cwd = [...parents][0];
    lower = layers.map((l) => path.basename(l));
  }
  // The init layer lives with the container, not with the layers: relative to
  // the same directory it is `../../containers/<id>/init`, some 90 bytes
  // whatever the data root, on top of 8 bytes per layer.
  const init = cwd === '/' ? p.init : path.relative(cwd, p.init);
  const options = `lowerdir=${[init, ...lower].join(':')},upperdir=${p.upper},workdir=${p.work}`;
  if (options.length > MOUNT_OPTIONS_MAX) throw refused(`Cannot mount the container's root filesystem: its ${layers.length} layers make the mount options ${options.length} bytes long (at most ${MOUNT_OPTIONS_MAX})`);
  return { options, cwd };
}

/** Mounts the root filesystem; `layers` top first (the image's: the init layer goes above them). */
export async function mountRootfs(containerDir: string, layers: string[]): Promise<RootfsPaths> {
  const p = rootfsPaths(containerDir);
  for (const d of [p.upper, p.work, p.merged]) fs.mkdirSync(d, { recursive: true });
  if (isMounted(p.merged)) return p;
  const { options, cwd } = overlayOptions(p, layers);
  try {
    await ensureInitLayer(containerDir, layers);
    await run('mount', ['-t', 'overlay', 'overlay', '-o', options, p.merged], { cwd });
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
