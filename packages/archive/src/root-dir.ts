// A directory that an image, a layer or a container's processes control,
// seen from the host: every path is resolved by the kernel inside the root
// (openat2 with RESOLVE_IN_ROOT, through the in_root addon), as if the root
// were `/`. A symbolic link or `..` can never lead out of it, even when the
// tree changes between two calls. The last component of a path is acted on
// itself (a link there is not followed) unless a call says otherwise.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { refused } from '@stevedore/errors';

interface InRootAddon {
  openRoot(hostPath: string): number;
  open(root: number, rel: string, flags: number, mode: number): number;
  mkdir(root: number, rel: string, mode: number): void;
  symlink(root: number, target: string, rel: string): void;
  link(root: number, existing: string, rel: string): void;
  mknod(root: number, rel: string, mode: number, major: number, minor: number): void;
  lchown(root: number, rel: string, uid: number, gid: number): void;
  chmod(root: number, rel: string, mode: number): void;
  utimes(root: number, rel: string, atimeMs: number, mtimeMs: number): void;
  setxattr(root: number, rel: string, name: string, value: Buffer): void;
  getxattr(hostPath: string, name: string): Buffer | null;
  remove(root: number, rel: string): void;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const addon: InRootAddon = require(path.join(__dirname, '..', 'native', 'build', 'in_root.node'));

const O_PATH = 0o10000000;
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** An extended attribute of a trusted host path (not followed), or null when it has none. */
export function hostXattr(hostPath: string, name: string): Buffer | null {
  return addon.getxattr(hostPath, name);
}

/**
 * Removes a tree that an image or a container made (a layer, a container's
 * directory, a volume), walking it by descriptors: such a tree is as deep as
 * its maker chose, past what a recursive fs.rm handles (a 4,096-byte name
 * makes 2,047 nested directories: its recursion overflows the stack). A
 * missing tree is fine.
 */
export function removeTree(hostPath: string): void {
  RootDir.with(path.dirname(hostPath), (parent) => parent.remove(path.basename(hostPath)));
}

/** removeTree off the request's path: fs.rm on the thread pool, the descriptor walk when that fails. */
export async function removeTreeSoon(hostPath: string): Promise<void> {
  try {
    await fs.promises.rm(hostPath, { recursive: true, force: true });
  } catch {
    removeTree(hostPath);
  }
}

/** `p` as a path relative to a root: leading `/`, `.` and empty components dropped (`..` is left to the kernel). */
export function relInRoot(p: string): string {
  return p
    .split('/')
    .filter((x) => x && x !== '.')
    .join('/');
}

export class RootDir {
  private fd: number;

  private constructor(
    readonly hostPath: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Opens the root (a trusted host path). Close it when done. */
  static open(hostPath: string): RootDir {
    return new RootDir(hostPath, addon.openRoot(hostPath));
  }

  /** Runs `fn` with the root open, closing it after. */
  static with<T>(hostPath: string, fn: (root: RootDir) => T): T {
    const root = RootDir.open(hostPath);
    let async = false;
    try {
      const out = fn(root);
      if (out instanceof Promise) {
        async = true;
        return out.finally(() => root.close()) as T;
      }
      return out;
    } finally {
      if (!async) root.close();
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  /** A descriptor of the file at `rel` (flags as open(2); add O_NOFOLLOW to act on a last-component link). */
  open(rel: string, flags: number, mode = 0): number {
    return addon.open(this.fd, rel, flags, mode);
  }

  /** A new file, created exclusively (never through a link), open for writing. */
  create(rel: string, mode: number): number {
    return addon.open(this.fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  }

  /** lstat (`follow` false) or stat of `rel`, or undefined when nothing is there. */
  stat(rel: string, follow = false): fs.Stats | undefined {
    let fd: number;
    try {
      fd = addon.open(this.fd, rel, O_PATH | (follow ? 0 : O_NOFOLLOW), 0);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    try {
      return fs.fstatSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Where `rel` leads on the host, every link followed inside the root (the
   * last one too unless `followLast` is false). For handing a path to a tool
   * that takes names (mount, a tar walk) while nothing else changes the tree.
   */
  hostPathOf(rel: string, followLast = true): string {
    const fd = addon.open(this.fd, rel, O_PATH | (followLast ? 0 : O_NOFOLLOW), 0);
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } finally {
      fs.closeSync(fd);
    }
  }

  mkdir(rel: string, mode: number): void {
    addon.mkdir(this.fd, rel, mode);
  }

  /** Makes `rel` and every missing directory above it; each one found must be a directory (links followed inside the root). */
  mkdirAll(rel: string, mode: number): void {
    const parts = rel.split('/').filter(Boolean);
    let sofar = '';
    for (const part of parts) {
      sofar = sofar ? `${sofar}/${part}` : part;
      try {
        addon.mkdir(this.fd, sofar, mode);
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (!this.stat(sofar, true)?.isDirectory()) {
        const e = new Error(`Not a directory: ${sofar}`) as NodeJS.ErrnoException;
        e.code = 'ENOTDIR';
        throw e;
      }
    }
  }

  symlink(target: string, rel: string): void {
    addon.symlink(this.fd, target, rel);
  }

  link(existing: string, rel: string): void {
    addon.link(this.fd, existing, rel);
  }

  mknod(rel: string, type: 'character-device' | 'block-device' | 'fifo', mode: number, major = 0, minor = 0): void {
    const kind = type === 'fifo' ? fs.constants.S_IFIFO : type === 'character-device' ? fs.constants.S_IFCHR : fs.constants.S_IFBLK;
    addon.mknod(this.fd, rel, kind | (mode & 0o7777), major, minor);
  }

  lchown(rel: string, uid: number, gid: number): void {
    addon.lchown(this.fd, rel, uid, gid);
  }

  /** The mode of `rel` itself (a link keeps none). After lchown: chown clears setuid and setgid. */
  chmod(rel: string, mode: number): void {
    addon.chmod(this.fd, rel, mode);
  }

  utimes(rel: string, atime: Date, mtime: Date): void {
    addon.utimes(this.fd, rel, atime.getTime(), mtime.getTime());
  }

  setxattr(rel: string, name: string, value: Buffer): void {
    addon.setxattr(this.fd, rel, name, value);
  }

  /** Removes whatever is at `rel`, a directory with all below it; nothing there is fine. */
  remove(rel: string): void {
    addon.remove(this.fd, rel);
  }

  /**
   * The content of a regular file that the image chose (`/etc/passwd`),
   * links followed inside the root. A FIFO, a device or a directory there is
   * refused without being opened (opening one could block or act), and so
   * is a file larger than `maxBytes`. Undefined when there is no such file.
   */
  readFile(rel: string, maxBytes: number): Buffer | undefined {
    let fd: number;
    try {
      fd = addon.open(this.fd, rel, O_PATH, 0);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw refused(`/${rel} is not a regular file`);
      if (st.size > maxBytes) throw refused(`/${rel} is larger than ${maxBytes} bytes`);
      // Reopened through its descriptor: exactly the inode checked above.
      const rd = fs.openSync(`/proc/self/fd/${fd}`, O_RDONLY | O_NONBLOCK);
      try {
        // As large as the file said, and one byte more to see it grow meanwhile.
        const buf = Buffer.alloc(st.size + 1);
        let n = 0;
        for (let r; n < buf.length && (r = fs.readSync(rd, buf, n, buf.length - n, null)) > 0; ) n += r;
        if (n === buf.length) throw refused(`/${rel} grew while it was read`);
        return buf.subarray(0, n);
      } finally {
        fs.closeSync(rd);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
