// What ADD and COPY put in the container (BUILDER.md §5): the sources a
// step names (context paths, patterns, or a URL for ADD), the cache key they
// make, and the tar stream that carries them into the step's container.
import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { decompress, isArchive } from '@stevedore/archive';
import { refused } from '@stevedore/errors';
import type { BuildContext, ContextEntry } from './context';

/**
 * One source, as tar entries owned by root at names relative to the target
 * directory: a context directory's contents, a context file (under a name),
 * a context archive's entries, or a downloaded file.
 */
export type Placement =
  | { kind: 'tree'; entry: ContextEntry }
  | { kind: 'file'; entry: ContextEntry; name: string }
  | { kind: 'archive'; entry: ContextEntry }
  | { kind: 'download'; file: string; name: string };

export interface AddSources {
  /** What the step's cache key says of the sources: their checksums. */
  key: string;
  /** The directory of the container the sources go below. */
  target: string;
  placements: Placement[];
}

/** The sha256 of a downloaded file's content. */
async function fileChecksum(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Whether ADD unpacks a context file rather than copying it, as its first bytes say. */
function isContextArchive(context: BuildContext, entry: ContextEntry): boolean {
  return isArchive(context.read({ ...entry, size: Math.min(entry.size, 512) }));
}

/** ADD of a URL: the file downloaded into the build's directory. */
async function download(src: string, workDir: string): Promise<string> {
  const file = path.join(workDir, `download-${randomUUID()}`);
  const res = await fetch(src).catch((err: Error) => {
    throw refused(`Error downloading ${src}: ${err.message}`);
  });
  if (!res.ok || !res.body) throw refused(`Error downloading ${src}: ${res.status} ${res.statusText}`);
  await pipeline(Readable.fromWeb(res.body), fs.createWriteStream(file, { mode: 0o600 }));
  return file;
}

/**
 * The sources of an ADD or COPY whose source is `src` and whose destination
 * (absolute) is `dest`, a directory when it ends with '/'. A download lands
 * in `workDir`: discardDownloads removes it once the step is over.
 */
export async function addSources(instruction: 'ADD' | 'COPY', src: string, dest: string, context: BuildContext, workDir: string): Promise<AddSources> {
  const toDir = dest.endsWith('/');
  if (/^https?:\/\//.test(src)) {
    if (instruction === 'COPY') throw refused("Source can't be an URL for COPY");
    const name = new URL(src).pathname.split('/').pop() ?? '';
    if (toDir && !name) throw refused(`cannot determine filename from url: ${src}`);
    const file = await download(src, workDir);
    return {
      key: `file:${await fileChecksum(file)}`,
      target: toDir ? dest : path.posix.dirname(dest),
      placements: [{ kind: 'download', file, name: toDir ? name : path.posix.basename(dest) }],
    };
  }
  const sources = context.sources(src);
  if (sources.length > 1 && !toDir) throw refused(`When using ${instruction} with more than one source file, the destination must be a directory and end with a /`);
  const sums: string[] = [];
  const placements: Placement[] = [];
  let target = dest;
  for (const entry of sources) {
    sums.push(`${entry.type === 'directory' ? 'dir' : 'file'}:${context.checksum(entry)}`);
    if (entry.type === 'directory') placements.push({ kind: 'tree', entry });
    else if (instruction === 'ADD' && isContextArchive(context, entry)) placements.push({ kind: 'archive', entry });
    else if (toDir) placements.push({ kind: 'file', entry, name: path.posix.basename(entry.name) });
    else {
      target = path.posix.dirname(dest);
      placements.push({ kind: 'file', entry, name: path.posix.basename(dest) });
    }
  }
  const key = sums.length === 1 ? sums[0] : `multi:${createHash('sha256').update(sums.join(',')).digest('hex')}`;
  return { key, target, placements };
}

/** A downloaded file is the step's own, as Docker 1.0's temporary directory was. */
export function discardDownloads(placements: Placement[]): void {
  for (const p of placements) if (p.kind === 'download') fs.rmSync(p.file, { force: true });
}

/** The tar stream of the sources, each entry owned by root. */
export function sourcesTar(context: BuildContext, placements: Placement[]): Readable {
  const pack = tar.pack();
  type Header = { name: string; mode: number; mtime: Date; type: 'file' | 'directory' | 'symlink'; size?: number; linkname?: string };
  const add = (header: Header, body?: Buffer | Readable) =>
    new Promise<void>((resolve, reject) => {
      const h = { ...header, uid: 0, gid: 0, uname: '', gname: '' } as tar.Header;
      if (!body || Buffer.isBuffer(body)) return void pack.entry(h, body ?? '', (err) => (err ? reject(err) : resolve()));
      body.on('error', reject).pipe(pack.entry(h, (err) => (err ? reject(err) : resolve())));
    });
  const addEntry = (e: ContextEntry, name: string) => {
    const common = { name, mode: e.mode, mtime: e.mtime };
    if (e.type === 'directory') return add({ ...common, type: 'directory' });
    if (e.type === 'symlink') return add({ ...common, type: 'symlink', linkname: e.linkname });
    return add({ ...common, type: 'file', size: e.size }, context.content(e));
  };
  const archive = async (e: ContextEntry): Promise<void> => {
    const body = context.content(e);
    const { stream } = await decompress(Buffer.isBuffer(body) ? Readable.from([body], { objectMode: false }) : body);
    const extract = tar.extract();
    extract.on('entry', (header, content, next) => {
      const entry = pack.entry({ ...header, uid: 0, gid: 0, uname: '', gname: '' }, (err) => next(err ?? undefined));
      content.pipe(entry);
    });
    await new Promise<void>((resolve, reject) => {
      extract.on('finish', resolve).on('error', reject);
      stream.on('error', reject).pipe(extract);
    });
  };
  (async () => {
    for (const p of placements) {
      if (p.kind === 'tree') {
        const cut = p.entry.name ? p.entry.name.length + 1 : 0;
        for (const e of context.below(p.entry.name)) await addEntry(e, e.name.slice(cut));
      } else if (p.kind === 'archive') await archive(p.entry);
      else if (p.kind === 'file') await addEntry(p.entry, p.name);
      else {
        const st = fs.statSync(p.file);
        await add({ name: p.name, mode: 0o600, mtime: st.mtime, type: 'file', size: st.size }, fs.createReadStream(p.file));
      }
    }
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return pack as unknown as Readable;
}
