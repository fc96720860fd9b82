// The data root is private to root, as Docker's is since CVE-2021-41091:
// other users of the host must not traverse it, or they could read image
// and container files, run a setuid binary a container wrote into its
// writable layer, or open a device node a layer carried. Every directory
// directly below the root is 0700; the root itself is 0700, or 0710 with
// the group `docker` when the API's unix socket lives inside it (the
// group's members, trusted API clients, must reach the socket, and only
// that: they cannot list the root, and every directory below stops them).
// Directories an older version made wider are tightened at start-up.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StevedoreConfig } from '@stevedore/config';

/** The directories directly below the data root that Stevedore makes. */
export const DATA_ROOT_DIRS = ['run', 'logs', 'redis', 'images', 'containers', 'containers-removed', 'volumes', 'network', 'builds'] as const;

/** Files directly in the data root. */
export const DATA_ROOT_FILES = ['engine-id'] as const;

/** Directories: only root enters them. Files with metadata or content: only root reads them. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** A directory on the way to the API socket: root, and the socket's group may pass through. */
export const SOCKET_PATH_DIR_MODE = 0o710;

/** The group `docker`, whose members may use the API's unix sockets, when the host has one. */
export function dockerGroupId(): number | undefined {
  try {
    const line = fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('docker:'));
    return line ? Number(line.split(':')[2]) : undefined;
  } catch {
    return undefined;
  }
}

const runningAsRoot = (): boolean => process.getuid?.() === 0;

/** Makes `dir` (missing parents with `parentMode`) and gives it `mode` and owner root:`gid`, whatever it had before. */
function ownedDir(dir: string, mode: number, gid = 0, parentMode = 0o755): string {
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: parentMode });
  try {
    fs.mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (runningAsRoot()) {
    const st = fs.statSync(dir);
    if (st.uid !== 0 || st.gid !== gid) fs.chownSync(dir, 0, gid);
  }
  fs.chmodSync(dir, mode); // whatever the umask, and whatever an older version left
  return dir;
}

/** A directory only root enters: made 0700 (missing parents too), or tightened to it. */
export function privateDir(dir: string): string {
  return ownedDir(dir, PRIVATE_DIR_MODE, 0, PRIVATE_DIR_MODE);
}

/** A file only root reads (a database, a pid file): made empty 0600 when missing, else tightened to 0600. */
export function privateFile(file: string): string {
  fs.closeSync(fs.openSync(file, 'a', PRIVATE_FILE_MODE));
  fs.chmodSync(file, PRIVATE_FILE_MODE);
  return file;
}

/** A SQLite database file and the journal files beside it, all 0600 (SQLite gives new journals the database's mode). */
export function privateDatabase(file: string): string {
  privateFile(file);
  for (const suffix of ['-wal', '-shm', '-journal']) {
    try {
      fs.chmodSync(`${file}${suffix}`, PRIVATE_FILE_MODE);
    } catch {
      // not there
    }
  }
  return file;
}

/**
 * The directories from the data root down to each unix API socket inside
 * it (the root itself for the default `<root>/stevedore.sock`).
 */
export function socketPathDirs(config: StevedoreConfig): string[] {
  const dirs = new Set<string>();
  for (const host of config.hosts) {
    if (!host.startsWith('unix://')) continue;
    const rel = path.relative(config.root, path.dirname(path.resolve(host.slice('unix://'.length))));
    if (rel.startsWith('..') || path.isAbsolute(rel)) continue;
    dirs.add(config.root);
    let sofar = config.root;
    for (const part of rel.split(path.sep).filter(Boolean)) dirs.add((sofar = path.join(sofar, part)));
  }
  return [...dirs];
}

/**
 * Makes the data root private (every process calls this at start-up: the
 * launcher, and each service, which may run without it): the root and the
 * directories on the way to an API socket inside it 0710 with the group
 * `docker` (0700 when the host has no such group or no socket is inside),
 * and those of DATA_ROOT_DIRS that exist, or that `create` names, 0700
 * (DATA_ROOT_FILES 0600).
 */
export function secureDataRoot(config: StevedoreConfig, create: ReadonlyArray<(typeof DATA_ROOT_DIRS)[number]> = []): void {
  const gid = dockerGroupId();
  const toSocket = new Set(gid === undefined ? [] : socketPathDirs(config));
  ownedDir(config.root, toSocket.has(config.root) ? SOCKET_PATH_DIR_MODE : PRIVATE_DIR_MODE, toSocket.has(config.root) ? gid : 0);
  for (const dir of toSocket) if (dir !== config.root) ownedDir(dir, SOCKET_PATH_DIR_MODE, gid);
  for (const name of DATA_ROOT_DIRS) {
    const dir = path.join(config.root, name);
    if (toSocket.has(dir) || (!create.includes(name) && !fs.existsSync(dir))) continue;
    privateDir(dir);
  }
  for (const name of DATA_ROOT_FILES) {
    const file = path.join(config.root, name);
    if (fs.existsSync(file)) fs.chmodSync(file, PRIVATE_FILE_MODE);
  }
}

/**
 * The umask of a service's process. The image store and the container
 * runtime write image and container content (layers, a container's root
 * directory, mount points it needs, its /etc/hosts): they run with 022, as
 * Docker's daemon does, so that what they make without an explicit mode gets
 * the modes an image expects whatever shell started the stack. The others
 * make only Stevedore's own files: 077.
 */
export function serviceUmask(name: string): number {
  return name === 'image-store' || name === 'container-runtime' ? 0o022 : 0o077;
}
