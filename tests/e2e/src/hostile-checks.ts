// What the crafted-archive tests expect and how they check it: the outcome
// each kind of extraction should give a case of the corpus (hostile-archives.ts),
// what an accepted case wrote and where, those facts checked in a layer's tar
// or in a directory of the host, and the per-path report that gathers them.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';
// Installs the byte-exact PAX codec for SCHILY.xattr records into tar-stream (file capabilities are binary).
import '@stevedore/archive';
import type { HostileCase } from './hostile-archives';

type Outcome = 'refused' | 'confined';

export interface Seen {
  outcome: Outcome | 'other';
  status: number;
  /** The refusal's message, or what was answered when neither outcome fits. */
  message: string;
  /** The image an accepted archive made (image paths). */
  image?: string;
}

/** What an accepted archive left inside its target, relative to the root the archive was extracted in. */
type Fact = { path: string } & ({ file: string } | { dir: number } | { symlink: string } | { whiteout: true });

/** How a path extracts: a layer (import, load, pull), a copy below / or at /, or a build's ADD and commit. */
export type Extraction = 'layer' | 'copy-below' | 'copy-root' | 'build';

/**
 * The outcome each extraction should give. A copy below / is the corpus'
 * "copy into a directory" (`expectCopy`). A copy at / extracts into the
 * container's root itself: the archive's own directories are found by its
 * links, as in a layer, and `.wh.` names are plain files, as in a copy, so an
 * archive either accepts is accepted. A build's ADD is a copy at /, and its
 * commit extracts the container's changes again as a layer, where a `.wh.`
 * file the copy made is a whiteout: accepted only if both accept it.
 */
export function expected(c: HostileCase, how: Extraction): Outcome {
  const copyRoot: Outcome = c.expect === 'confined' || c.expectCopy === 'confined' ? 'confined' : 'refused';
  if (how === 'layer') return c.expect;
  if (how === 'copy-below') return c.expectCopy ?? c.expect;
  if (how === 'copy-root') return copyRoot;
  return copyRoot === 'confined' && c.expect === 'confined' ? 'confined' : 'refused';
}

/** Where the copy below / goes, in each case's own container. */
export const COPY_DIR = '/tmp/sub';

/**
 * What each accepted case wrote, and where: links followed as if the target
 * were `/`. (A link in a copy below / resolves from the container's root, so
 * `etc/passwd` through `etc -> /` lands in the root's `passwd`.)
 */
export function insideFacts(c: HostileCase, canary: string, how: Extraction): Fact[] | undefined {
  const p = how === 'copy-below' ? `${COPY_DIR.slice(1)}/` : '';
  const a = canary.slice(1);
  switch (c.name) {
    case 'a link to the host, then a directory entry of it (chmod 0777)':
      return [{ path: `${p}a`, dir: 0o777 }];
    case 'a link to the host file, then a file of the same name (replaces the link)':
      return [{ path: `${p}f`, file: 'pwned\n' }];
    case 'a link to a host file, then a hard link to the link':
      return [{ path: `${p}h`, file: 'pwned\n' }, { path: `${p}l`, symlink: `${canary}/victim` }];
    case 'a layer replacing etc by a link to /, then etc/passwd':
      return [{ path: `${p}etc`, symlink: '/' }, { path: 'passwd', file: 'root::0:0::/:/bin/sh\n' }];
    case 'a link to the host whose path also exists inside: the file lands inside':
      return [{ path: `${a}/victim`, file: 'pwned\n' }];
    case 'a climbing link whose path also exists inside: a whiteout lands inside':
      if (how === 'layer') return [{ path: `${a}/subdir`, whiteout: true }];
      // A copy writes `.wh.subdir` as a plain file. The build's commit reads it back as a whiteout, which
      // comes before `subdir` in the diff (sorted) and so removes nothing: the file stays.
      if (how === 'copy-root') return [{ path: `${a}/subdir`, file: 'pwned\n' }, { path: `${a}/.wh.subdir`, file: '' }];
      return [{ path: `${a}/subdir`, file: 'pwned\n' }];
    case 'an absolute name':
      return [{ path: `${p}${a}/victim`, file: 'pwned\n' }];
    case 'names that differ only before normalisation':
      return [{ path: `${p}a/b`, file: 'third\n' }];
    case 'a whiteout of the target itself':
      return [{ path: `${p}.wh.`, file: '' }];
    case 'a whiteout of ..':
      return [{ path: `${p}a/.wh...`, file: '' }];
    default:
      return undefined;
  }
}

/** JSON progress messages (import, pull, build) as the edge frames them. */
export function messages(text: string): Array<{ status?: string; stream?: string; error?: string }> {
  return text.split(/\r\n|(?<=\})(?=\{)/).filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Runs `fn` over `items`, at most `limit` at once; a failure is thrown once every item is done (nothing runs on into the next test). */
export async function eachLimited<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i], i);
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return out;
}

export interface TarItem {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string;
  body: Buffer;
  pax: Record<string, string>;
}

/** The entries of a tar in memory, by name (no `./`, no trailing `/`). */
export async function tarItems(archive: Buffer): Promise<Map<string, TarItem>> {
  const out = new Map<string, TarItem>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        const name = h.name.replace(/^\.\//, '').replace(/\/+$/, '');
        out.set(name, { type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, linkname: h.linkname ?? '', body: Buffer.concat(chunks), pax: (h.pax ?? {}) as Record<string, string> });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(archive);
  await done;
  return out;
}

/** A fact checked against a layer's tar (a saved image's layer.tar); a problem, or undefined. */
export function checkInTar(items: Map<string, TarItem>, f: Fact): string | undefined {
  if ('whiteout' in f) {
    const marker = path.posix.join(path.posix.dirname(f.path), `.wh.${path.posix.basename(f.path)}`);
    return items.has(marker) ? undefined : `${f.path}: no whiteout ${marker} in the layer`;
  }
  const e = items.get(f.path);
  if (!e) return `${f.path}: not in the layer`;
  if ('file' in f) return e.type === 'file' && e.body.toString() === f.file ? undefined : `${f.path}: ${e.type} ${JSON.stringify(e.body.toString().slice(0, 40))}, not a file holding ${JSON.stringify(f.file)}`;
  if ('dir' in f) return e.type === 'directory' && (e.mode & 0o7777) === f.dir ? undefined : `${f.path}: ${e.type} mode ${(e.mode & 0o7777).toString(8)}, not a directory of mode ${f.dir.toString(8)}`;
  return e.type === 'symlink' && e.linkname === f.symlink ? undefined : `${f.path}: ${e.type} -> ${e.linkname}, not a link to ${f.symlink}`;
}

/** A fact checked in a directory of the host (a container's writable layer), never following a link. */
export function checkOnHost(root: string, f: Fact): string | undefined {
  const parts = f.path.split('/');
  let p = root;
  let st: fs.Stats | undefined;
  for (const [i, part] of parts.entries()) {
    p = path.join(p, part);
    st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) return `${f.path}: missing`;
    if (i < parts.length - 1 && !st.isDirectory()) return `${f.path}: ${parts.slice(0, i + 1).join('/')} is not a directory`;
  }
  if ('whiteout' in f) return st!.isCharacterDevice() && st!.rdev === 0 ? undefined : `${f.path}: not a whiteout`;
  if ('file' in f) {
    if (!st!.isFile()) return `${f.path}: not a file`;
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const content = fs.readFileSync(fd).toString();
      return content === f.file ? undefined : `${f.path}: holds ${JSON.stringify(content.slice(0, 40))}, not ${JSON.stringify(f.file)}`;
    } finally {
      fs.closeSync(fd);
    }
  }
  if ('dir' in f) return st!.isDirectory() && (st!.mode & 0o7777) === f.dir ? undefined : `${f.path}: not a directory of mode ${f.dir.toString(8)}`;
  return st!.isSymbolicLink() && fs.readlinkSync(p) === f.symlink ? undefined : `${f.path}: not a link to ${f.symlink}`;
}

/** The names a refusal may name its entry by: as written, without a trailing `/`, a PAX path. */
function entryNames(c: HostileCase): string[] {
  return c.entries.flatMap((e) => [e.name, e.name.replace(/\/+$/, ''), ...(e.pax?.path ? [e.pax.path] : [])]).filter(Boolean);
}

/** The outcomes of one path, checked together, and a line of counts for the report. */
export class PathReport {
  readonly rows: Array<{ c: HostileCase; want: Outcome; seen: Seen }> = [];
  readonly problems: string[] = [];

  constructor(
    readonly name: string,
    /** The status a refusal answers on this path: 500 before a stream begins, 200 (an error in the stream) after. */
    readonly refusalStatus: number,
    /** Refusals whose message names no entry of the archive, gathered over every path (one test checks them all). */
    readonly unnamed: string[],
  ) {}

  record(c: HostileCase, want: Outcome, seen: Seen): void {
    this.rows.push({ c, want, seen });
    if (seen.outcome !== want) this.problems.push(`${c.name}: ${seen.outcome}, not ${want} (${seen.status} ${seen.message.slice(0, 300)})`);
    if (seen.outcome === 'refused') {
      if (seen.status !== this.refusalStatus) this.problems.push(`${c.name}: refused with ${seen.status}, not ${this.refusalStatus}`);
      if (!entryNames(c).some((n) => seen.message.includes(JSON.stringify(n)))) this.unnamed.push(`${this.name}, ${c.name}: ${seen.message.slice(0, 300)}`);
    }
  }

  problem(text: string): void {
    this.problems.push(text);
  }

  counts(): string {
    const n = (o: Seen['outcome']) => this.rows.filter((r) => r.seen.outcome === o).length;
    return `${this.name}: ${this.rows.length} cases, ${n('refused')} refused, ${n('confined')} confined, ${n('other')} other, ${this.problems.length} problems`;
  }

  /** Every case was seen, and nothing was wrong. */
  assertClean(t: TestContext, cases: number): void {
    t.diagnostic(this.counts());
    assert.equal(this.rows.length, cases, `${this.name}: every case went through`);
    assert.deepEqual(this.problems, [], `${this.name}:\n${this.problems.join('\n')}`);
  }
}

export const CASES_AT_ONCE = 8;
