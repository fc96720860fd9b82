// A corpus of crafted archives, each trying to act outside the directory it
// is extracted into, and a canary tree to prove that none did: every path,
// byte, mode, owner, link count and inode of the canary is compared before
// and after. The archives aim at the canary by its absolute host path (and
// by `..` far enough to reach it), as an attacker aims at the host's `/`.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';

interface HostileEntry {
  name: string;
  type?: tar.Header['type'];
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records (a `path` here overrides the header's name, as readers do). */
  pax?: Record<string, string>;
}

export interface HostileCase {
  name: string;
  entries: HostileEntry[];
  /**
   * `refused`: the archive is refused (its links lead to nothing inside the
   * target). `confined`: it is accepted, and whatever it wrote is inside the
   * target (a link followed as if the target were `/`). Either way the canary
   * is untouched.
   */
  expect: 'refused' | 'confined';
  /** The outcome of a copy into a container where it differs (`.wh.` names are plain files there). */
  expectCopy?: 'refused' | 'confined';
}

const CLIMB = '../'.repeat(40);

/** The crafted archives, aimed at the canary directory `canary` (an absolute host path). */
export function hostileCorpus(canary: string): HostileCase[] {
  const abs = canary; // e.g. /tmp/canary-x
  const rel = `${CLIMB}${canary.replace(/^\//, '')}`;
  const link = (name: string, to: string): HostileEntry => ({ name, type: 'symlink', linkname: to });
  const dir = (name: string, mode = 0o755): HostileEntry => ({ name, type: 'directory', mode });
  const file = (name: string, body = 'pwned\n', mode = 0o644): HostileEntry => ({ name, body, mode });
  const hard = (name: string, to: string): HostileEntry => ({ name, type: 'link', linkname: to });
  return [
    { name: 'directory, then a link to the host in its place, then a file through it', entries: [dir('a/'), link('a', abs), file('a/victim')], expect: 'refused' },
    { name: 'a link to the host, then a new file through it', entries: [link('a', abs), file('a/created')], expect: 'refused' },
    { name: 'a link to the host, then a hard link to a host file through it', entries: [link('a', abs), hard('hl', 'a/victim')], expect: 'refused' },
    { name: 'a link to the host, then a whiteout through it', entries: [link('a', abs), file('a/.wh.victim', '')], expect: 'refused' },
    { name: 'a link to the host, then a whiteout of a host directory through it', entries: [link('a', abs), file('a/.wh.subdir', '')], expect: 'refused' },
    { name: 'a link to the host, then an opaque marker through it', entries: [link('a', abs), file('a/.wh..wh..opq', '')], expect: 'refused' },
    { name: 'a relative link climbing to the host, then a file through it', entries: [link('a', rel), file('a/victim')], expect: 'refused' },
    { name: 'a chain of links ending on the host, then a file through it', entries: [link('c', abs), link('b', 'c'), link('a', 'b'), file('a/victim')], expect: 'refused' },
    { name: 'a chain of relative links, then a file through it', entries: [dir('x/'), dir('x/y/'), link('x/y/up', '../..'), link('a', `x/y/up/${rel}`), file('a/victim')], expect: 'refused' },
    { name: 'a link to the host, then a directory entry of it (chmod 0777)', entries: [link('a', abs), dir('a/', 0o777)], expect: 'confined' },
    { name: 'a link to the host, then a subdirectory entry through it', entries: [link('a', abs), dir('a/subdir/', 0o777)], expect: 'refused' },
    { name: 'a link to the host, then a link through it', entries: [link('a', abs), link('a/evil', '/')], expect: 'refused' },
    { name: 'a link to the host, then a device node through it', entries: [link('a', abs), { name: 'a/mem', type: 'character-device', devmajor: 1, devminor: 1, mode: 0o666 }], expect: 'refused' },
    { name: 'a link to the host, then a FIFO through it', entries: [link('a', abs), { name: 'a/fifo', type: 'fifo', mode: 0o666 }], expect: 'refused' },
    { name: 'a link to the host file, then a file of the same name (replaces the link)', entries: [link('f', `${abs}/victim`), file('f')], expect: 'confined' },
    { name: 'a link to a host file, then a hard link to the link', entries: [link('l', `${abs}/victim`), hard('h', 'l'), file('h')], expect: 'confined' },
    { name: 'a directory with a file, swapped for a link, then the file again', entries: [dir('a/'), file('a/victim', 'inside\n'), link('a', abs), file('a/victim')], expect: 'refused' },
    { name: 'a layer replacing etc by a link to /, then etc/passwd', entries: [link('etc', '/'), file('etc/passwd', 'root::0:0::/:/bin/sh\n')], expect: 'confined' },
    { name: 'a link through /proc/self/root', entries: [dir('proc/'), dir('proc/self/'), link('proc/self/root', '/'), link('a', `/proc/self/root${abs}`), file('a/victim')], expect: 'refused' },
    { name: 'a link to the host whose path also exists inside: the file lands inside', entries: [dir(`${abs.slice(1)}/`), link('a', abs), file('a/victim')], expect: 'confined', expectCopy: 'refused' },
    { name: 'a climbing link whose path also exists inside: a whiteout lands inside', entries: [dir(`${abs.slice(1)}/`), file(`${abs.slice(1)}/subdir`), link('a', rel), file('a/.wh.subdir', '')], expect: 'confined', expectCopy: 'refused' },
    { name: 'a name climbing out with ..', entries: [file(`../${path.basename(abs)}/victim`)], expect: 'refused' },
    { name: 'a name climbing out after a directory', entries: [dir('a/'), file(`a/${CLIMB}${abs.slice(1)}/victim`)], expect: 'refused' },
    { name: 'a name climbing out after a link', entries: [link('a', abs), file('a/../../victim')], expect: 'refused' },
    { name: 'an absolute name', entries: [file(`${abs}/victim`)], expect: 'confined' },
    { name: 'an absolute name climbing', entries: [file(`/../${abs.slice(1)}/victim`)], expect: 'refused' },
    { name: 'a hard link climbing out', entries: [hard('hl', `${CLIMB}${abs.slice(1)}/victim`)], expect: 'refused' },
    { name: 'a hard link with an absolute host target', entries: [hard('hl', `${abs}/victim`)], expect: 'refused' },
    { name: 'a hard link through a relative link', entries: [link('a', rel), hard('hl', 'a/victim')], expect: 'refused' },
    { name: 'a PAX path climbing out', entries: [{ ...file('innocent'), pax: { path: `${CLIMB}${abs.slice(1)}/victim` } }], expect: 'refused' },
    { name: 'a PAX linkpath to a host file', entries: [{ ...hard('innocent', 'x'), pax: { linkpath: `${abs}/victim` } }], expect: 'refused' },
    { name: 'names that differ only before normalisation', entries: [dir('a/'), file('./a//b'), file('a/./b', 'second\n'), file('a/x/../b', 'third\n')], expect: 'confined' },
    { name: 'a whiteout of the target itself', entries: [file('.wh.', '')], expect: 'refused', expectCopy: 'confined' },
    { name: 'a whiteout of ..', entries: [dir('a/'), file('a/.wh...', '')], expect: 'refused', expectCopy: 'confined' },
    { name: 'a 4096-byte name', entries: [file(`${'d/'.repeat(2047)}xy`)], expect: 'refused' },
    { name: 'a 300-byte component', entries: [file('n'.repeat(300))], expect: 'refused' },
    { name: 'a link into the host, then a hard link from inside to the host through the link', entries: [file('inside'), link('a', abs), hard('a/stolen', 'inside')], expect: 'refused' },
  ];
}

/** A tar of the case's entries. */
export function hostileTar(c: HostileCase): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of c.entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      linkname: e.linkname,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      devmajor: e.devmajor,
      devminor: e.devminor,
      mtime: new Date(1_600_000_000_000),
      pax: e.pax,
    } as tar.Header;
    pack.entry(header, type === 'file' ? (e.body ?? '') : '');
  }
  pack.finalize();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = pack as unknown as NodeJS.ReadableStream;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

/** A canary tree at `dir`: files, a subdirectory, a setuid file, a link. */
export function makeCanary(dir: string): void {
  fs.mkdirSync(path.join(dir, 'subdir'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'victim'), 'the host file\n', { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'subdir', 'inner'), 'inner\n', { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'suid'), 'setuid\n');
  fs.chmodSync(path.join(dir, 'suid'), 0o4755);
  fs.symlinkSync('victim', path.join(dir, 'link'));
}

export interface CanaryEntry {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  ino: number;
  nlink: number;
  mtimeMs: number;
  ctimeMs: number;
  content: string;
}

/** Everything observable of the tree at `dir`, the directory itself included ('.'). */
export function snapshotTree(dir: string): Record<string, CanaryEntry> {
  const out: Record<string, CanaryEntry> = {};
  const visit = (abs: string, rel: string) => {
    const st = fs.lstatSync(abs);
    let content = '';
    if (st.isFile()) content = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    else if (st.isSymbolicLink()) content = fs.readlinkSync(abs);
    else if (st.isDirectory()) content = fs.readdirSync(abs).sort().join('\n');
    out[rel] = { mode: st.mode, uid: st.uid, gid: st.gid, size: st.isDirectory() ? 0 : st.size, ino: st.ino, nlink: st.nlink, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, content };
    if (st.isDirectory()) for (const name of fs.readdirSync(abs).sort()) visit(path.join(abs, name), rel === '.' ? name : `${rel}/${name}`);
  };
  visit(dir, '.');
  return out;
}
