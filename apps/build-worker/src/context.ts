// A build's context, kept as the archive arrived rather than unpacked: every
// file's content appended to one data file in the build's own directory,
// and an index in memory of each entry (name, type, mode, where its content
// is, its sha256). A cached step then costs no file creation and no reading
// (ADD's cache key comes from the index), and nothing can be written
// outside the build's directory whatever the archive holds. What ADD needs
// is packed from the index and the data file, streamed.
//
// The context comes from the archive the API edge stored (read from the
// build's context stream in Redis, and the image store's blob store for the
// rest of a large one; decompressed as its first bytes say), or from
// what `remote` names: a git repository (cloned, then read the same way) or
// a Dockerfile's URL. `.dockerignore` patterns are applied here too (the CLI
// applies them before sending; other clients may not).
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { promisify } from 'node:util';
import * as tar from 'tar-stream';
import { cleanEntryName, decompress, treeTar } from '@stevedore/archive';
import { readContextStream, type BuildKeys } from '@stevedore/builds';
import type { images } from '@stevedore/contracts';
import { asStevedoreError, notFound, refused } from '@stevedore/errors';
import type { Redis } from '@stevedore/redis';
import type { StoreClient } from './build-backends';

const run = promisify(execFile);
/** Contents read at once when packed (most contexts are many small files); larger ones stream. */
const SMALL_FILE = 256 * 1024;
const MAX_LINKS = 40;

export interface ContextEntry {
  /** Relative, clean ('' is the context's root). */
  name: string;
  type: 'file' | 'directory' | 'symlink';
  /** Permission bits. */
  mode: number;
  mtime: Date;
  /** A file's content: where it starts in the data file, its length, its sha256. */
  offset: number;
  size: number;
  sha256: string;
  linkname: string;
}

/** Counts bytes through; fails past the limit. */
function limited(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(refused(`The build context is larger than the limit of ${max} bytes (STEVEDORE_BUILD_CONTEXT_MAX)`));
      else cb(null, chunk);
    },
  });
}

/** A .dockerignore pattern as a regular expression over context-relative paths. */
function patternRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += pattern[i + 1] === '*' ? (i++, '.*') : '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const parentOf = (name: string): string => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '');

export class BuildContext {
  private readonly entries = new Map<string, ContextEntry>();
  /** list()'s answer, until the entries change. */
  private sorted?: ContextEntry[];
  private readonly fd: number;
  private end = 0;

  private constructor(readonly dataFile: string) {
    this.fd = fs.openSync(dataFile, 'wx', 0o600);
    this.entries.set('', { name: '', type: 'directory', mode: 0o755, mtime: new Date(), offset: 0, size: 0, sha256: '', linkname: '' });
  }

  /** Reads a tar stream (never whole in memory) into a new context whose data file is `<dir>/context.data`. */
  static async fromTar(input: Readable, dir: string): Promise<BuildContext> {
    const context = new BuildContext(path.join(dir, 'context.data'));
    const extract = tar.extract();
    extract.on('entry', (header, content, next) => {
      context
        .add(header, content as AsyncIterable<Buffer>)
        .then(() => next())
        .catch((err: Error) => {
          content.resume();
          next(err);
        });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        extract.on('finish', resolve).on('error', reject);
        input.on('error', reject).pipe(extract);
      });
    } finally {
      fs.closeSync(context.fd);
    }
    return context;
  }

  /** Every entry, names sorted (a directory before what it holds). */
  list(): ContextEntry[] {
    this.sorted ??= [...this.entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.sorted;
  }

  private async add(header: tar.Header, content: AsyncIterable<Buffer>): Promise<void> {
    const name = cleanEntryName(header.name);
    const base = { name, mode: (header.mode ?? 0o644) & 0o7777, mtime: header.mtime ?? new Date(0), offset: 0, size: 0, sha256: '', linkname: '' };
    const type = header.type ?? 'file';
    if (name === '' && type === 'directory') return;
    this.ensureParents(name);
    if (type === 'directory') return void this.put({ ...base, type: 'directory' });
    if (type === 'symlink') return void this.put({ ...base, type: 'symlink', linkname: header.linkname ?? '' });
    if (type === 'link') {
      const target = this.entries.get(cleanEntryName(header.linkname ?? ''));
      if (!target || target.type !== 'file') throw refused(`hard link ${JSON.stringify(header.name)} to a missing file`);
      return void this.put({ ...target, name, mode: base.mode, mtime: base.mtime });
    }
    if (type !== 'file' && type !== 'contiguous-file') return; // devices and FIFOs are no part of a build
    const hash = createHash('sha256');
    const offset = this.end;
    for await (const chunk of content) {
      hash.update(chunk);
      for (let off = 0; off < chunk.length; ) off += fs.writeSync(this.fd, chunk, off, chunk.length - off, this.end + off);
      this.end += chunk.length;
    }
    this.put({ ...base, type: 'file', offset, size: this.end - offset, sha256: hash.digest('hex') });
  }

  private put(entry: ContextEntry): void {
    this.sorted = undefined;
    const was = this.entries.get(entry.name);
    // A later entry replaces an earlier one; a directory replaced goes with all it held.
    if (was?.type === 'directory' && entry.type !== 'directory') for (const n of [...this.entries.keys()]) if (n.startsWith(`${entry.name}/`)) this.entries.delete(n);
    if (was?.type === 'directory' && entry.type === 'directory') return void this.entries.set(entry.name, { ...was, mode: entry.mode, mtime: entry.mtime });
    this.entries.set(entry.name, entry);
  }

  /** The parents of a name: directories (made when missing), never through a symbolic link. */
  private ensureParents(name: string): void {
    const missing: string[] = [];
    for (let p = parentOf(name); p !== ''; p = parentOf(p)) {
      const e = this.entries.get(p);
      if (e?.type === 'directory') break;
      if (e) throw refused(`Archive entry ${JSON.stringify(name)} is below a non-directory`);
      missing.push(p);
    }
    if (missing.length) this.sorted = undefined;
    for (const p of missing) this.entries.set(p, { name: p, type: 'directory', mode: 0o755, mtime: new Date(), offset: 0, size: 0, sha256: '', linkname: '' });
  }

  /** Removes what `.dockerignore` names (a path, or any of its parents, matching a pattern); never the Dockerfile or .dockerignore itself. */
  applyDockerignore(): number {
    const file = this.entries.get('.dockerignore');
    if (file?.type !== 'file') return 0;
    const patterns = this.read(file)
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'))
      .map((l) => patternRegex(path.posix.normalize(l).replace(/^\/+/, '').replace(/\/+$/, '')));
    let removed = 0;
    for (const name of [...this.entries.keys()]) {
      if (!name || name === 'Dockerfile' || name === '.dockerignore') continue;
      let p = name;
      for (; p && !patterns.some((re) => re.test(p)); p = parentOf(p));
      if (p) {
        this.sorted = undefined;
        this.entries.delete(name);
        removed++;
      }
    }
    return removed;
  }

  /** A small file's content. */
  read(entry: ContextEntry): Buffer {
    const buf = Buffer.alloc(entry.size);
    const fd = fs.openSync(this.dataFile, 'r');
    try {
      for (let off = 0; off < entry.size; ) {
        const n = fs.readSync(fd, buf, off, entry.size - off, entry.offset + off);
        if (n === 0) break;
        off += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    return buf;
  }

  /** A file's content: read at once when small, else as a stream. */
  content(entry: ContextEntry): Buffer | Readable {
    if (entry.size <= SMALL_FILE) return this.read(entry);
    return fs.createReadStream(this.dataFile, { start: entry.offset, end: entry.offset + entry.size - 1 });
  }

  /** The Dockerfile's text, or undefined when the context has none. */
  dockerfile(): string | undefined {
    try {
      const e = this.resolve('Dockerfile', 'Dockerfile');
      return e.type === 'file' ? this.read(e).toString('utf8') : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The entry a context path names, symbolic links followed as the path
   * would resolve in an unpacked context. A path that leaves the context
   * (`..` above its root, an absolute link) is refused; `src` is the
   * instruction's source, for the messages.
   */
  resolve(rel: string, src: string): ContextEntry {
    const forbidden = (where: string) => refused(`Forbidden path outside the build context: ${src} (${where})`);
    const pending = rel.split('/').filter((c) => c && c !== '.');
    let at = '';
    let links = 0;
    while (pending.length) {
      const c = pending.shift()!;
      if (c === '..') {
        if (at === '') throw forbidden(path.posix.join(at, ...[c, ...pending]));
        at = parentOf(at);
        continue;
      }
      const next = at ? `${at}/${c}` : c;
      const e = this.entries.get(next);
      if (!e) throw notFound(`${src}: no such file or directory`);
      if (e.type === 'symlink') {
        if (++links > MAX_LINKS) throw notFound(`${src}: too many levels of symbolic links`);
        if (e.linkname.startsWith('/')) throw forbidden(e.linkname);
        pending.unshift(...e.linkname.split('/').filter((x) => x && x !== '.'));
        continue;
      }
      if (pending.length && e.type !== 'directory') throw notFound(`${src}: not a directory`);
      at = next;
    }
    return this.entries.get(at)!;
  }

  /** The entries a source names (a wildcard in its last part matches several), in name order. */
  sources(src: string): ContextEntry[] {
    const rel = path.posix.normalize(src.replace(/^\/+/, ''));
    if (rel === '..' || rel.startsWith('../')) throw refused(`Forbidden path outside the build context: ${src} (${rel})`);
    const base = path.posix.basename(rel);
    if (!/[*?[]/.test(base)) return [this.resolve(rel, src)];
    const dirRel = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    let dir: ContextEntry;
    try {
      dir = this.resolve(dirRel, src);
    } catch {
      throw notFound(`${src}: no such file or directory`);
    }
    const re = new RegExp(`^${base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
    const names = this.childrenOf(dir.name).filter((e) => re.test(path.posix.basename(e.name)));
    if (!names.length) throw notFound(`${src}: no such file or directory`);
    return names.map((e) => this.resolve(e.name, src));
  }

  /** The entries directly in a directory, in name order. */
  childrenOf(dir: string): ContextEntry[] {
    const prefix = dir ? `${dir}/` : '';
    return this.list().filter((e) => e.name !== dir && e.name.startsWith(prefix) && !e.name.slice(prefix.length).includes('/'));
  }

  /** Every entry below a directory, in name order (a directory before what it holds). */
  below(dir: string): ContextEntry[] {
    const prefix = dir ? `${dir}/` : '';
    return this.list().filter((e) => e.name !== dir && e.name.startsWith(prefix));
  }

  /** The checksum ADD and COPY are cached on: every entry's path, type, mode and content below it (not times: a deliberate difference). */
  checksum(entry: ContextEntry): string {
    const hash = createHash('sha256');
    const line = (e: ContextEntry, rel: string) => hash.update(`${rel}\0${e.type}\0${e.mode.toString(8)}\0${e.type === 'symlink' ? e.linkname : e.sha256}\n`);
    line(entry, '');
    if (entry.type === 'directory') {
      const cut = entry.name ? entry.name.length + 1 : 0;
      for (const e of this.below(entry.name)) line(e, e.name.slice(cut));
    }
    return hash.digest('hex');
  }
}

/** Where the API edge puts a context: the build's context stream, and the blob store for the rest of a large one. */
export interface StoredContext {
  /** A connection of the reader's own (the reads block). */
  redis: Redis;
  keys: BuildKeys;
  buildId: string;
  store: Pick<StoreClient, 'getBlob'>;
  requestId: string;
  signal: AbortSignal;
}

/** The context as the edge stores it, read as it arrives, decompressed and indexed in `dir`. */
export async function fetchContext(from: StoredContext, dir: string, maxBytes: number): Promise<BuildContext> {
  let call: ReturnType<StoreClient['getBlob']> | undefined;
  const bytes = Readable.from(
    (async function* () {
      let blob = '';
      for await (const part of readContextStream(from.redis, from.keys, from.buildId, from.signal)) {
        if (Buffer.isBuffer(part)) yield part;
        else blob = part.blob;
      }
      if (!blob) return;
      call = from.store.getBlob({ id: blob }, { requestId: from.requestId });
      const chunks: AsyncIterable<images.DataChunk> = call;
      // Kept: a second run of the build (its first one's node died) reads it again; the edge deletes it once the build has ended.
      for await (const c of chunks) yield c.data;
    })(),
    { objectMode: false },
  );
  try {
    const { stream } = await decompress(bytes);
    const counted = stream.pipe(limited(maxBytes));
    stream.on('error', (err) => counted.destroy(err));
    return await BuildContext.fromTar(counted, dir);
  } catch (err) {
    call?.cancel();
    const e = asStevedoreError(err);
    if (e.kind === 'refused' || e.kind === 'notFound') throw e;
    throw refused(`The build context is not a valid archive: ${e.message}`);
  }
}

/** A git URL as Docker 1.0 recognised one. */
function isGitUrl(remote: string): boolean {
  return remote.startsWith('git://') || remote.startsWith('github.com/') || remote.startsWith('git@github.com:') || (/^https?:\/\//.test(remote) && remote.endsWith('.git'));
}

/** What `remote` names, read into a context in `dir`: a git repository's files, or a Dockerfile downloaded. */
export async function remoteContext(remote: string, dir: string, maxBytes: number): Promise<BuildContext> {
  if (isGitUrl(remote)) {
    const url = remote.startsWith('github.com/') ? `https://${remote}` : remote;
    const clone = path.join(dir, 'clone');
    try {
      await run('git', ['clone', '--recursive', '--depth', '1', url, clone], { timeout: 300_000 });
    } catch (err) {
      const e = err as { message: string; stderr?: string };
      throw refused(`Error trying to use git: ${e.message.split('\n')[0]} (${(e.stderr ?? '').trim()})`);
    }
    try {
      return await BuildContext.fromTar(treeTar(clone, { whiteouts: false }).pipe(limited(maxBytes)), dir);
    } finally {
      fs.rmSync(clone, { recursive: true, force: true });
    }
  }
  if (!/^https?:\/\//.test(remote)) throw refused(`Cannot build from ${JSON.stringify(remote)}: a git URL or the http(s) URL of a Dockerfile is expected`);
  const res = await fetch(remote).catch((err: Error) => {
    throw refused(`Error downloading ${remote}: ${err.message}`);
  });
  if (!res.ok || !res.body) throw refused(`Error downloading ${remote}: ${res.status} ${res.statusText}`);
  // The Dockerfile alone, as a one-entry archive (its length is needed before its bytes: it is stored first).
  const file = path.join(dir, 'Dockerfile.download');
  const { pipeline } = await import('node:stream/promises');
  await pipeline(Readable.fromWeb(res.body), limited(maxBytes), fs.createWriteStream(file, { mode: 0o600 }));
  const pack = tar.pack();
  const entry = pack.entry({ name: 'Dockerfile', size: fs.statSync(file).size, mode: 0o644, type: 'file' }, (err) => (err ? pack.destroy(err) : pack.finalize()));
  fs.createReadStream(file).pipe(entry);
  try {
    return await BuildContext.fromTar(pack as unknown as Readable, dir);
  } finally {
    fs.rmSync(file, { force: true });
  }
}
