// Extracts a tar diff into a layer directory that overlayfs can use as a
// lower directory, or into a directory of a container. Confined by
// construction: every entry is written through the in-root operations of
// RootDir (openat2 with RESOLVE_IN_ROOT), so a link an earlier entry made,
// a directory swapped for a link, `..` or an absolute name all resolve inside
// the target, as they would in a chroot. Whiteouts become overlay whiteouts.
// The archive is read as a stream, never held whole.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import * as tar from 'tar-stream';
import { refused } from '@stevedore/errors';
import { XATTR_PAX_PREFIX } from './pax-xattrs';
import { RootDir } from './root-dir';
import { makeWhiteouts, markOpaque, OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts';
export interface AppliedLayer {
  /** Bytes of file content in the layer. */
  size: number;
  /** sha256 of the (decompressed) tar stream as it was read ('' when not asked for). */
  digest: string;
  entries: number;
}

/**
 * An entry name as a clean path relative to the target, as Docker read
 * names (joined to the target, then cleaned): a leading `/` and `./` are
 * dropped and `a/../b` is `b`; a name that climbs above the target is refused.
 */
export function cleanEntryName(name: string): string {
  const cleaned = path.posix.normalize(`${name.replace(/^\/+/, '')}/`).replace(/\/+$/, '');
  if (cleaned === '..' || cleaned.startsWith('../')) throw refused(`Archive entry ${JSON.stringify(name)} points outside the target`);
  return cleaned === '.' ? '' : cleaned;
}

/** Counts and hashes the bytes going through. */
class Digester extends Transform {
  readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.hash.update(chunk);
    this.push(chunk);
    cb();
  }
}

/**
 * Writes an entry's content to a new file. The writes are synchronous: into
 * the page cache they take microseconds, and a stream per file cost more in
 * overhead than the writes themselves.
 */
async function writeEntry(content: AsyncIterable<Buffer>, fd: number, overlap: boolean): Promise<void> {
  try {
    for await (const chunk of content) {
      // Synchronous writes cost the least CPU. With `overlap`, large chunks go to the thread pool
      // instead, so the work upstream (digests, decompression) goes on while the disk takes them.
      if (overlap && chunk.length >= ASYNC_WRITE_BYTES) await writeAll(fd, chunk);
      else for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off);
    }
  } finally {
    fs.closeSync(fd);
  }
}

const ASYNC_WRITE_BYTES = 64 * 1024;

const writeAsync = promisify(fs.write);

async function writeAll(fd: number, chunk: Buffer): Promise<void> {
  for (let off = 0; off < chunk.length; ) off += (await writeAsync(fd, chunk, off, chunk.length - off, null)).bytesWritten;
}

export interface ApplyOptions {
  /** An archive with no entries is a layer (saved and pulled images have empty layers); otherwise refused. */
  allowEmpty?: boolean;
  /** Compute the layer's diff ID (sha256 of the archive); on unless false. */
  digest?: boolean;
  /** Write large chunks from the thread pool: for input whose producer has work of its own (a pull's gunzip and digests). */
  overlapWrites?: boolean;
  /**
   * A directory inside `dest` (relative) that the entries are extracted into, `dest` staying the root
   * that links resolve in: a copy into a container (`dest` its root filesystem). Its `.wh.` entries are
   * plain files there, as they are to Docker's copy.
   */
  under?: string;
}

/** Extended attributes a layer may carry: file capabilities (what Docker archives) and the user namespace. `trusted.*` would speak to overlayfs itself. */
const KEPT_XATTR = /^(security\.capability|user\..+)$/;

/** A file-system error met while extracting (a name too long, a file where a directory must be) as a refusal of the archive. */
function asRefusal(err: unknown, what: string): unknown {
  if (!(err as NodeJS.ErrnoException).code || (err as { kind?: string }).kind) return err;
  return refused(`${what}: ${(err as Error).message}`);
}

export async function applyLayer(input: Readable, dest: string, options: ApplyOptions = {}): Promise<AppliedLayer> {
  const root = RootDir.open(dest);
  try {
    return await extractConfined(input, root, options);
  } finally {
    root.close();
  }
}

async function extractConfined(input: Readable, root: RootDir, options: ApplyOptions): Promise<AppliedLayer> {
  const layer = options.under === undefined;
  const under = options.under ? cleanEntryName(options.under) : '';
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  // By name: an archive that repeats a directory's entry keeps one time for it, not one each.
  const dirTimes = new Map<string, Date>();
  // Directories known to exist: only saves a mkdir. Safety never rests on it (every call resolves in the
  // root); it is emptied when something is removed, which may have taken one of them.
  const made = new Set<string>(['']);
  const removed = (rel: string) => {
    root.remove(rel);
    made.clear();
    made.add('');
  };
  /** Clears the way for a new entry at `rel`: whatever an earlier entry of the same name left. */
  const replacing = (rel: string) => {
    const st = root.stat(rel);
    if (st?.isDirectory()) removed(rel);
    else if (st) root.remove(rel);
  };
  let size = 0;
  let entries = 0;

  const ensureParent = (rel: string) => {
    const parent = path.posix.dirname(rel);
    if (parent === '.' || made.has(parent)) return;
    root.mkdirAll(parent, 0o755);
    made.add(parent);
  };
  const inTarget = (name: string) => {
    const rel = cleanEntryName(name);
    return under && rel ? `${under}/${rel}` : under || rel;
  };

  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    // A truncated archive fails the entry too; the extract reports it.
    stream.on('error', () => undefined);
    (async () => {
      entries++;
      const rel = inTarget(header.name);
      if (rel === under) {
        stream.resume();
        return;
      }
      try {
        await applyEntry(header, stream as unknown as AsyncIterable<Buffer> & Readable, rel);
      } catch (err) {
        throw asRefusal(err, `Cannot extract the archive entry ${JSON.stringify(header.name)}`);
      }
    })().then(() => next(), (err) => next(err as Error));
  });

  const applyEntry = async (header: tar.Header, stream: AsyncIterable<Buffer> & Readable, rel: string) => {
    ensureParent(rel);
    const base = path.posix.basename(rel);
    const parentRel = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    if (layer && base === OPAQUE_MARKER) {
      opaque.push(parentRel);
      stream.resume();
      return;
    }
    if (layer && base.startsWith(WHITEOUT_PREFIX)) {
      const target = path.posix.join(parentRel, base.slice(WHITEOUT_PREFIX.length));
      removed(target);
      whiteouts.push(target);
      stream.resume();
      return;
    }

    const mode = (header.mode ?? 0o644) & 0o7777;
    const mtime = header.mtime ?? new Date(0);
    const owner = () => root.lchown(rel, header.uid ?? 0, header.gid ?? 0);
    // chown clears setuid, setgid and file capabilities: mode and attributes after it.
    const attributes = () => {
      for (const [key, value] of Object.entries((header.pax ?? {}) as Record<string, string>)) {
        if (!key.startsWith(XATTR_PAX_PREFIX)) continue;
        const name = key.slice(XATTR_PAX_PREFIX.length);
        if (KEPT_XATTR.test(name)) root.setxattr(rel, name, Buffer.from(value, 'latin1'));
      }
    };
    switch (header.type) {
      case 'directory': {
        if (!root.stat(rel)?.isDirectory()) {
          removed(rel);
          root.mkdir(rel, 0o700);
        }
        made.add(rel);
        owner();
        root.chmod(rel, mode);
        attributes();
        dirTimes.delete(rel);
        dirTimes.set(rel, mtime);
        stream.resume();
        return;
      }
      case 'file':
      case 'contiguous-file': {
        replacing(rel);
        await writeEntry(stream, root.create(rel, 0o600), options.overlapWrites === true);
        owner();
        root.chmod(rel, mode);
        attributes();
        root.utimes(rel, mtime, mtime);
        size += header.size ?? 0;
        return;
      }
      case 'symlink': {
        replacing(rel);
        root.symlink(header.linkname ?? '', rel);
        owner();
        root.utimes(rel, mtime, mtime);
        stream.resume();
        return;
      }
      case 'link': {
        // The link's target is a name in the same archive, resolved in the same root.
        let target: string;
        try {
          target = inTarget(header.linkname ?? '');
        } catch {
          throw refused(`Archive entry ${JSON.stringify(header.name)} links to ${JSON.stringify(header.linkname)}, outside the target`);
        }
        const st = target === '' ? undefined : root.stat(target);
        if (!st) throw refused(`Archive entry ${JSON.stringify(header.name)} links to ${JSON.stringify(header.linkname)}, which the archive does not contain`);
        if (st.isDirectory()) throw refused(`Archive entry ${JSON.stringify(header.name)} is a hard link to a directory`);
        if (target === rel) {
          stream.resume();
          return;
        }
        replacing(rel);
        root.link(target, rel);
        stream.resume();
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        replacing(rel);
        root.mknod(rel, header.type, 0o600, header.devmajor ?? 0, header.devminor ?? 0);
        owner();
        root.chmod(rel, mode);
        root.utimes(rel, mtime, mtime);
        stream.resume();
        return;
      }
      default:
        // pax headers are folded in by tar-stream; other kinds carry nothing to write.
        stream.resume();
    }
  };

  const digester = options.digest === false ? undefined : new Digester();
  try {
    if (digester) await pipeline(input, digester, extract);
    else await pipeline(input, extract);
  } catch (err) {
    const e = err as Error & { kind?: string };
    if (e.kind) throw err;
    throw refused(`The archive is not a valid tar archive: ${e.message}`);
  }
  if (entries === 0 && !options.allowEmpty) throw refused('The archive is empty or not a tar archive');
  try {
    makeWhiteouts(root, whiteouts);
    markOpaque(root, opaque);
    // Directory times last, deepest (latest) first: creating their entries changed them.
    for (const [rel, mtime] of [...dirTimes].reverse()) if (root.stat(rel)?.isDirectory()) root.utimes(rel, mtime, mtime);
  } catch (err) {
    throw asRefusal(err, 'Cannot finish the archive\'s directories and whiteouts');
  }
  return { size, digest: digester ? `sha256:${digester.hash.digest('hex')}` : '', entries };
}
