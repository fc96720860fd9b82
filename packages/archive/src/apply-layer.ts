// Extracts a tar diff into a layer directory that overlayfs can use as a
// lower directory. Entries are confined to the directory: `..` and
// absolute names are cleaned or refused, nothing is written through a
// symbolic link, and a hard link must point inside. Whiteouts become
// overlay whiteouts. The archive is read as a stream, never held whole.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { refused } from '@stevedore/errors';
import { makeWhiteouts, markOpaque, OPAQUE_MARKER, WHITEOUT_PREFIX } from './whiteouts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface AppliedLayer {
  /** Bytes of file content in the layer. */
  size: number;
  /** sha256 of the (decompressed) tar stream as it was read ('' when not asked for). */
  digest: string;
  entries: number;
}

/** An entry name made relative and clean; refused when absolute or when it climbs (`..`). */
export function cleanEntryName(name: string): string {
  const trimmed = name.replace(/^(\.\/)+/, '');
  if (trimmed.startsWith('/') || trimmed.split('/').includes('..')) throw refused(`Archive entry ${JSON.stringify(name)} points outside the target`);
  return path.posix.normalize(trimmed || '.').replace(/\/$/, '').replace(/^\.$/, '');
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
async function writeEntry(content: AsyncIterable<Buffer>, file: string, mode: number, overlap: boolean): Promise<void> {
  const fd = fs.openSync(file, 'wx', mode);
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
}

export async function applyLayer(input: Readable, dest: string, options: ApplyOptions = {}): Promise<AppliedLayer> {
  const safeDirs = new Set<string>(['']);
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  const dirTimes: Array<[string, Date]> = [];
  let size = 0;
  let entries = 0;

  /** Every parent of `rel` must be a real directory of this layer (created when missing). */
  const ensureParents = (rel: string) => {
    const parent = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    if (safeDirs.has(parent)) return;
    let sofar = '';
    for (const part of parent.split('/')) {
      sofar = sofar ? `${sofar}/${part}` : part;
      if (safeDirs.has(sofar)) continue;
      const abs = path.join(dest, sofar);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(abs);
      } catch {
        fs.mkdirSync(abs, { mode: 0o755 });
      }
      if (st && !st.isDirectory()) throw refused(`Archive entry ${JSON.stringify(rel)} would be written through ${st.isSymbolicLink() ? 'a symbolic link' : 'a file'} (${sofar})`);
      safeDirs.add(sofar);
    }
  };

  /** Removes whatever is at `abs` (this layer's own earlier entry of the same name). */
  const clear = (abs: string, keepDir: boolean) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      if (!keepDir) fs.rmSync(abs, { recursive: true, force: true });
    } else fs.unlinkSync(abs);
  };

  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    // A truncated archive fails the entry too; the extract reports it.
    stream.on('error', () => undefined);
    const done = (err?: unknown) => (err ? next(err as Error) : next());
    (async () => {
      entries++;
      const rel = cleanEntryName(header.name);
      if (rel === '') {
        stream.resume();
        return;
      }
      ensureParents(rel);
      const abs = path.join(dest, rel);
      const base = path.posix.basename(rel);
      const parentRel = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);

      if (base === OPAQUE_MARKER) {
        opaque.push(path.join(dest, parentRel));
        stream.resume();
        return;
      }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        const target = path.join(dest, parentRel, base.slice(WHITEOUT_PREFIX.length));
        clear(target, false);
        whiteouts.push(target);
        stream.resume();
        return;
      }

      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date(0);
      switch (header.type) {
        case 'directory': {
          clear(abs, true);
          if (!fs.existsSync(abs)) fs.mkdirSync(abs);
          fs.chmodSync(abs, mode);
          fs.lchownSync(abs, header.uid ?? 0, header.gid ?? 0);
          safeDirs.add(rel);
          dirTimes.push([abs, mtime]);
          stream.resume();
          return;
        }
        case 'file':
        case 'contiguous-file': {
          clear(abs, false);
          await writeEntry(stream as unknown as AsyncIterable<Buffer>, abs, mode, options.overlapWrites === true);
          fs.chmodSync(abs, mode); // umask-free
          fs.lchownSync(abs, header.uid ?? 0, header.gid ?? 0);
          fs.utimesSync(abs, mtime, mtime);
          size += header.size ?? 0;
          return;
        }
        case 'symlink': {
          clear(abs, false);
          fs.symlinkSync(header.linkname ?? '', abs);
          fs.lchownSync(abs, header.uid ?? 0, header.gid ?? 0);
          fs.lutimesSync(abs, mtime, mtime);
          stream.resume();
          return;
        }
        case 'link': {
          const target = cleanEntryName(header.linkname ?? '');
          const targetAbs = path.join(dest, target);
          let st: fs.Stats;
          try {
            st = fs.lstatSync(targetAbs);
          } catch {
            throw refused(`Archive entry ${JSON.stringify(rel)} links to ${JSON.stringify(header.linkname)}, which the archive does not contain`);
          }
          if (st.isDirectory()) throw refused(`Archive entry ${JSON.stringify(rel)} is a hard link to a directory`);
          ensureParents(target);
          clear(abs, false);
          fs.linkSync(targetAbs, abs);
          stream.resume();
          return;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          clear(abs, false);
          const kind = header.type === 'fifo' ? ['p'] : [header.type === 'character-device' ? 'c' : 'b', String(header.devmajor ?? 0), String(header.devminor ?? 0)];
          await run('mknod', ['-m', mode.toString(8), abs, ...kind]);
          fs.lchownSync(abs, header.uid ?? 0, header.gid ?? 0);
          stream.resume();
          return;
        }
        default:
          // pax headers are folded in by tar-stream; other kinds carry nothing to write.
          stream.resume();
      }
    })().then(() => done(), done);
  });

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
  await makeWhiteouts(whiteouts);
  await markOpaque(opaque);
  // Directory times last: creating their entries changed them.
  for (let i = dirTimes.length - 1; i >= 0; i--) fs.utimesSync(dirTimes[i][0], dirTimes[i][1], dirTimes[i][1]);
  return { size, digest: digester ? `sha256:${digester.hash.digest('hex')}` : '', entries };
}
