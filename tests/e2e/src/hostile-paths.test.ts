// The crafted-archive corpus (hostile-archives.ts) through every path of the
// API that extracts an archive: import, load (Docker 1.0's layout and the
// manifest.json one, a crafted layer alone or on a busybox base layer), a
// copy into a running container (below / and at /), a build's `ADD x.tar /`,
// and a pull from a registry. For each case and path: the outcome its
// `expect` gives, a refusal with Docker 1.0's status and a message naming
// the entry, what an accepted archive wrote found inside, the canary on the
// host unchanged, and nothing left behind (no image, no layer directory, no
// container). Then: setuid, setgid and file capabilities through import,
// load, pull, commit, save and build.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
// Also installs the byte-exact PAX codec for SCHILY.xattr records into tar-stream (file capabilities are binary).
import { hostXattr } from '@stevedore/archive';
import { hostileCorpus, hostileTar, makeCanary, snapshotTree, type CanaryEntry, type HostileCase } from './hostile-archives';
import { busyboxRootfsTar, makeTar, tarBuffer } from './images-fixtures';
import { shortTempDir, sleep, startRegistry, startStackWithBusybox, stopStack, type Stack } from './harness';

type Outcome = 'refused' | 'confined';

interface Seen {
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
type Extraction = 'layer' | 'copy-below' | 'copy-root' | 'build';

/**
 * The outcome each extraction should give. A copy below / is the corpus'
 * "copy into a directory" (`expectCopy`). A copy at / extracts into the
 * container's root itself: the archive's own directories are found by its
 * links, as in a layer, and `.wh.` names are plain files, as in a copy, so an
 * archive either accepts is accepted. A build's ADD is a copy at /, and its
 * commit extracts the container's changes again as a layer, where a `.wh.`
 * file the copy made is a whiteout: accepted only if both accept it.
 */
function expected(c: HostileCase, how: Extraction): Outcome {
  const copyRoot: Outcome = c.expect === 'confined' || c.expectCopy === 'confined' ? 'confined' : 'refused';
  if (how === 'layer') return c.expect;
  if (how === 'copy-below') return c.expectCopy ?? c.expect;
  if (how === 'copy-root') return copyRoot;
  return copyRoot === 'confined' && c.expect === 'confined' ? 'confined' : 'refused';
}

/** Where the copy below / goes, in each case's own container. */
const COPY_DIR = '/tmp/sub';

/**
 * What each accepted case wrote, and where: links followed as if the target
 * were `/`. (A link in a copy below / resolves from the container's root, so
 * `etc/passwd` through `etc -> /` lands in the root's `passwd`.)
 */
function insideFacts(c: HostileCase, canary: string, how: Extraction): Fact[] | undefined {
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

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const newId = () => randomBytes(32).toString('hex');

/** JSON progress messages (import, pull, build) as the edge frames them. */
function messages(text: string): Array<{ status?: string; stream?: string; error?: string }> {
  return text.split(/\r\n|(?<=\})(?=\{)/).filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Runs `fn` over `items`, at most `limit` at once; a failure is thrown once every item is done (nothing runs on into the next test). */
async function eachLimited<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
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

interface TarItem {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string;
  body: Buffer;
  pax: Record<string, string>;
}

/** The entries of a tar in memory, by name (no `./`, no trailing `/`). */
async function tarItems(archive: Buffer): Promise<Map<string, TarItem>> {
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
function checkInTar(items: Map<string, TarItem>, f: Fact): string | undefined {
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
function checkOnHost(root: string, f: Fact): string | undefined {
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
class PathReport {
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

const CASES_AT_ONCE = 8;

describe('crafted archives and file modes through every path of the API that extracts', () => {
  let stack: Stack;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  /** The canary's parent: nothing beside the canary may appear either. */
  let work: string;
  let canary: string;
  let canaryBefore: Record<string, CanaryEntry>;
  let scratch: string;
  let corpus: HostileCase[];
  let archives: Buffer[];
  let busybox: Buffer;
  const summary: string[] = [];
  const unnamed: string[] = [];

  before(async () => {
    [stack, registry] = await Promise.all([startStackWithBusybox({ STEVEDORE_BUILD_CONCURRENCY: String(CASES_AT_ONCE) }), startRegistry()]);
    work = shortTempDir('hp-');
    canary = path.join(work, 'canary');
    makeCanary(canary);
    canaryBefore = snapshotTree(work);
    scratch = shortTempDir('hpx-');
    corpus = hostileCorpus(canary);
    archives = await Promise.all(corpus.map((c) => hostileTar(c)));
    busybox = fs.readFileSync(busyboxRootfsTar());
  });

  after(async () => {
    // rm(1): a refused copy of a 4,096-byte name leaves 2,047 nested directories in its container, which the
    // runtime's removal leaves behind and fs.rmSync (stopStack's) cannot remove.
    const removed = stack && path.join(stack.root, 'containers-removed');
    if (removed && fs.existsSync(removed) && process.env.STEVEDORE_TEST_KEEP !== '1') execFileSync('find', [removed, '-mindepth', '1', '-maxdepth', '1', '-exec', 'rm', '-rf', '{}', '+']);
    await Promise.all([stopStack(stack), registry?.stop()]);
    for (const dir of [work, scratch]) if (dir) execFileSync('rm', ['-rf', dir]);
  });

  // --- helpers that need the stack ---

  const imageIds = async (): Promise<Set<string>> => {
    const list = await stack.request('GET', '/v1.12/images/json?all=1');
    assert.equal(list.status, 200, list.text);
    return new Set((JSON.parse(list.text) as Array<{ Id: string }>).map((i) => i.Id));
  };
  const layerDirs = () => new Set(fs.readdirSync(path.join(stack.root, 'images', 'l')));
  const layerScratch = () => fs.readdirSync(path.join(stack.root, 'images', 'tmp'));
  const restarts = () => stack.state().processes.map((p) => `${p.name}:${p.restarts}`);
  const imageExists = async (ref: string) => (await stack.request('GET', `/v1.12/images/${ref}/json`)).status === 200;

  /** The top layer of an image as saved (GET /images/ID/get). */
  async function savedLayer(id: string): Promise<Map<string, TarItem>> {
    const saved = await stack.request('GET', `/v1.12/images/${id}/get`);
    assert.equal(saved.status, 200, saved.text.slice(0, 300));
    const layer = (await tarItems(saved.body)).get(`${id}/layer.tar`);
    assert.ok(layer, `the save holds ${id}/layer.tar`);
    return tarItems(layer.body);
  }

  /** The facts of an accepted case checked in the image it made: problems. */
  async function checkImage(c: HostileCase, how: Extraction, id: string): Promise<string[]> {
    const facts = insideFacts(c, canary, how);
    if (!facts) return [`${c.name}: accepted, but nothing is known of what it writes`];
    const items = await savedLayer(id);
    return facts.map((f) => checkInTar(items, f)).filter((p): p is string => p !== undefined).map((p) => `${c.name}: ${p}`);
  }

  /** After each case: the canary as it was, and the daemon answering. */
  async function afterCase(report: PathReport, c: HostileCase): Promise<void> {
    try {
      assert.deepEqual(snapshotTree(work), canaryBefore);
    } catch (err) {
      report.problem(`${c.name}: THE CANARY CHANGED (this case or one running beside it):\n${(err as Error).message.slice(0, 2000)}`);
    }
    const ping = await stack.request('GET', '/_ping');
    if (ping.status !== 200 || ping.text !== 'OK') report.problem(`${c.name}: /_ping answered ${ping.status} ${ping.text}`);
  }

  /**
   * The image paths: runs every case, then checks that exactly the images of
   * accepted cases were added, one layer directory each, nothing half-built
   * in the layer store's scratch, no service restarted, the canary intact.
   */
  async function imagePath(
    t: TestContext,
    report: PathReport,
    how: Extraction,
    run: (c: HostileCase, archive: Buffer, i: number) => Promise<Seen & { expectIds: string[]; refs: string[] }>,
  ): Promise<void> {
    const imagesBefore = await imageIds();
    const layersBefore = layerDirs();
    const restartsBefore = restarts();
    const added = new Set<string>();
    const accepted: Array<[HostileCase, string]> = [];
    await eachLimited(corpus, CASES_AT_ONCE, async (c, i) => {
      const want = expected(c, how);
      const seen = await run(c, archives[i], i);
      report.record(c, want, seen);
      if (seen.outcome === 'confined') {
        for (const id of seen.expectIds) added.add(id);
        if (seen.image) accepted.push([c, seen.image]);
      } else {
        // Nothing of a refused archive is registered: not its images, not its names.
        for (const id of seen.expectIds) if (await imageExists(id)) report.problem(`${c.name}: ${seen.outcome}, yet image ${id} is registered`);
        for (const ref of seen.refs) if (await imageExists(ref)) report.problem(`${c.name}: ${seen.outcome}, yet ${ref} names an image`);
      }
      await afterCase(report, c);
    });
    // What the accepted ones wrote, read back with save once no upload runs: today a save beside an upload
    // of a few MiB wedges the API edge's HTTP/2 connection to the image store (both ends stop reading
    // while their own writes wait) until the connection is dropped, some 45 s later.
    for (const [c, image] of accepted) for (const p of await checkImage(c, how, image)) report.problem(p);
    const imagesAfter = await imageIds();
    const newImages = [...imagesAfter].filter((id) => !imagesBefore.has(id)).sort();
    const expectedNew = [...added].filter((id) => !imagesBefore.has(id)).sort();
    if (JSON.stringify(newImages) !== JSON.stringify(expectedNew)) report.problem(`images added: ${newImages.join(' ')}; expected only those of accepted cases: ${expectedNew.join(' ')}`);
    const newLayers = [...layerDirs()].filter((l) => !layersBefore.has(l));
    if (newLayers.length !== newImages.length) report.problem(`${newLayers.length} layer directories added for ${newImages.length} images`);
    if (layerScratch().length) report.problem(`left in the layer store's scratch: ${layerScratch().join(' ')}`);
    if (JSON.stringify(restarts()) !== JSON.stringify(restartsBefore)) report.problem(`services restarted: ${restarts().join(' ')}`);
    summary.push(report.counts());
    report.assertClean(t, corpus.length);
  }

  // --- (a) import ---

  test('(a) import: POST /images/create?fromSrc=- with the crafted tar as the body', async (t) => {
    const report = new PathReport('import', 500, unnamed);
    await imagePath(t, report, 'layer', async (c, archive, i) => {
      const ref = `hp-import:c${i}`;
      const r = await stack.request('POST', `/v1.12/images/create?fromSrc=-&repo=hp-import&tag=c${i}`, { headers: { 'Content-Type': 'application/x-tar' }, body: archive });
      const base = { status: r.status, expectIds: [] as string[], refs: [ref] };
      if (r.status === 500) return { ...base, outcome: 'refused', message: r.text.trim() };
      const last = r.status === 200 ? messages(r.text).at(-1) : undefined;
      if (last?.status && /^[0-9a-f]{64}$/.test(last.status)) return { ...base, outcome: 'confined', message: '', image: last.status, expectIds: [last.status] };
      if (last?.error) return { ...base, outcome: 'refused', message: last.error };
      return { ...base, outcome: 'other', message: r.text };
    });
  });

  // --- (b) load, both layouts ---

  const imageJson = (id: string, i: number, parent?: string) =>
    Buffer.from(JSON.stringify({ id, ...(parent ? { parent } : {}), created: '2020-09-13T12:26:40Z', comment: `hostile case ${i}`, container_config: { Cmd: null }, architecture: 'amd64', os: 'linux' }));

  /** Docker 1.0's save layout: `<id>/{VERSION,json,layer.tar}` per image, base first, then `repositories`. */
  function legacyArchive(repo: string, i: number, crafted: Buffer, withBase: boolean): { archive: Promise<Buffer>; ids: string[] } {
    const entries = new Map<string, Buffer>();
    const ids: string[] = [];
    let parent: string | undefined;
    for (const layer of withBase ? [busybox, crafted] : [crafted]) {
      const id = newId();
      entries.set(`${id}/VERSION`, Buffer.from('1.0')).set(`${id}/json`, imageJson(id, i, parent)).set(`${id}/layer.tar`, layer);
      ids.push(id);
      parent = id;
    }
    entries.set('repositories', Buffer.from(JSON.stringify({ [repo]: { [`c${i}`]: parent } })));
    return { archive: tarBuffer(entries), ids };
  }

  /** Today's layout: the layers, an image config, manifest.json; the top image is named by the config's digest. */
  function manifestArchive(repo: string, i: number, crafted: Buffer, withBase: boolean): { archive: Promise<Buffer>; ids: string[] } {
    const layers = withBase ? [busybox, crafted] : [crafted];
    const diffIds = layers.map((l) => `sha256:${sha256(l)}`);
    const config = Buffer.from(JSON.stringify({
      architecture: 'amd64', os: 'linux', created: '2020-09-13T12:26:40Z', config: { Cmd: ['sh'] },
      history: layers.map((_, n) => ({ created: '2020-09-13T12:26:40Z', created_by: `hostile case ${i} layer ${n}` })),
      rootfs: { type: 'layers', diff_ids: diffIds },
    }));
    const entries = new Map<string, Buffer>();
    const names = layers.map((l, n) => `${sha256(`${i}-${n}-${sha256(l)}`)}/layer.tar`);
    layers.forEach((l, n) => entries.set(names[n], l));
    const configName = `${sha256(config)}.json`;
    entries.set(configName, config);
    entries.set('manifest.json', Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [`${repo}:c${i}`], Layers: names }])));
    // The image IDs the store gives them: the base's from its layer digest, the top's the config's digest.
    const ids = withBase ? [sha256(` ${diffIds[0]}`), sha256(config)] : [sha256(config)];
    return { archive: tarBuffer(entries), ids };
  }

  for (const layout of ['Docker 1.0 layout', 'manifest.json layout'] as const) {
    for (const withBase of [false, true]) {
      const variant = `${layout}, ${withBase ? 'on a busybox base layer' : 'the crafted layer alone'}`;
      test(`(b) load, ${variant}`, async (t) => {
        const report = new PathReport(`load (${variant})`, 500, unnamed);
        await imagePath(t, report, 'layer', async (c, crafted, i) => {
          const repo = `hp-load-${layout === 'Docker 1.0 layout' ? 'legacy' : 'manifest'}-${withBase ? 'base' : 'alone'}`;
          const { archive, ids } = (layout === 'Docker 1.0 layout' ? legacyArchive : manifestArchive)(repo, i, crafted, withBase);
          const r = await stack.request('POST', '/v1.12/images/load', { body: await archive });
          // A refused manifest load may still find a base that an accepted one registered: only the top is its own.
          const own = layout === 'manifest.json layout' && withBase ? ids.slice(1) : ids;
          const base = { status: r.status, expectIds: ids, refs: [`${repo}:c${i}`] };
          if (r.status === 200 && r.text === '') return { ...base, outcome: 'confined', message: '', image: ids.at(-1) };
          if (r.status === 500) return { ...base, outcome: 'refused', message: r.text.trim(), expectIds: own };
          return { ...base, outcome: 'other', message: r.text, expectIds: own };
        });
      });
    }
  }

  // --- (c) copy into a running container ---

  test('(c) copy into a running container: PUT /containers/ID/archive below / (path=/tmp/sub), then at / (path=/)', async (t) => {
    const below = new PathReport(`copy (path=${COPY_DIR})`, 500, unnamed);
    const atRoot = new PathReport('copy (path=/)', 500, unnamed);
    const restartsBefore = restarts();
    const subdir = await makeTar([{ name: `${path.posix.basename(COPY_DIR)}/`, type: 'directory' }]);
    const put = async (id: string, to: string, body: Buffer): Promise<Seen> => {
      const r = await stack.request('PUT', `/v1.12/containers/${id}/archive?path=${encodeURIComponent(to)}`, { body });
      if (r.status === 200) return { outcome: 'confined', status: r.status, message: '' };
      if (r.status === 500) return { outcome: 'refused', status: r.status, message: r.text.trim() };
      return { outcome: 'other', status: r.status, message: r.text };
    };
    await eachLimited(corpus, CASES_AT_ONCE, async (c, i) => {
      // A container of its own: what one case made inside must not decide another's outcome.
      const created = await stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: 'busybox', Cmd: ['sleep', '600'] }) });
      assert.equal(created.status, 201, created.text);
      const id = JSON.parse(created.text).Id as string;
      assert.equal((await stack.request('POST', `/v1.12/containers/${id}/start`)).status, 204);
      assert.equal((await put(id, path.posix.dirname(COPY_DIR), subdir)).outcome, 'confined', `${COPY_DIR} made in ${id}`);
      const upper = path.join(stack.root, 'containers', id, 'upper');
      for (const [report, to, how] of [[below, COPY_DIR, 'copy-below'], [atRoot, '/', 'copy-root']] as const) {
        const seen = await put(id, to, archives[i]);
        report.record(c, expected(c, how), seen);
        if (seen.outcome === 'confined') {
          const facts = insideFacts(c, canary, how);
          if (!facts) report.problem(`${c.name}: accepted, but nothing is known of what it writes`);
          for (const f of facts ?? []) {
            const p = checkOnHost(upper, f);
            if (p) report.problem(`${c.name}: ${p}`);
          }
        }
        const state = JSON.parse((await stack.request('GET', `/v1.12/containers/${id}/json`)).text) as { State: { Running: boolean } };
        if (!state.State.Running) report.problem(`${c.name}: the container stopped`);
        await afterCase(report, c);
      }
    });
    if (JSON.stringify(restarts()) !== JSON.stringify(restartsBefore)) below.problem(`services restarted: ${restarts().join(' ')}`);
    summary.push(below.counts(), atRoot.counts());
    below.assertClean(t, corpus.length);
    atRoot.assertClean(t, corpus.length);
  });

  test('(c) the containers the copies filled are removed, and leave nothing', async () => {
    const list = async () => (JSON.parse((await stack.request('GET', '/v1.12/containers/json?all=1')).text) as Array<{ Id: string }>).map((c) => c.Id);
    for (const id of await list()) {
      const r = await stack.request('DELETE', `/v1.12/containers/${id}?force=1`);
      assert.equal(r.status, 204, `${id}: ${r.status} ${r.text}`);
    }
    assert.deepEqual(await list(), []);
    const dirs = () => fs.readdirSync(path.join(stack.root, 'containers')).filter((f) => !f.startsWith('containers.db'));
    const trash = () => fs.readdirSync(path.join(stack.root, 'containers-removed'));
    for (let i = 0; i < 50 && (dirs().length || trash().length); i++) await sleep(100);
    assert.deepEqual(dirs(), [], 'no container directory left');
    assert.deepEqual(trash(), [], 'the removed containers\' files are gone (a refused copy of a 4,096-byte name left 2,047 nested directories in one)');
    assert.equal((await stack.request('GET', '/_ping')).text, 'OK');
  });

  // --- (d) a build's ADD ---

  test('(d) build: a context of `FROM busybox` + `ADD x.tar /` and the crafted tar as x.tar', async (t) => {
    const report = new PathReport('build ADD', 200, unnamed);
    const containersBefore = (await stack.request('GET', '/v1.12/containers/json?all=1')).text;
    await imagePath(t, report, 'build', async (c, archive, i) => {
      const context = await tarBuffer(new Map([['Dockerfile', Buffer.from('FROM busybox\nADD x.tar /\n')], ['x.tar', archive]]));
      const r = await stack.request('POST', `/v1.12/build?t=hp-build:c${i}&forcerm=1`, { body: context });
      const base = { status: r.status, expectIds: [] as string[], refs: [`hp-build:c${i}`] };
      const lines = r.status === 200 ? messages(r.text) : [];
      const error = lines.find((l) => l.error)?.error;
      if (error) return { ...base, outcome: 'refused', message: error };
      if (lines.some((l) => /^Successfully built [0-9a-f]{12}/.test(l.stream ?? ''))) {
        const id = JSON.parse((await stack.request('GET', `/v1.12/images/hp-build:c${i}/json`)).text).Id as string;
        return { ...base, outcome: 'confined', message: '', image: id, expectIds: [id] };
      }
      if (r.status === 500) return { ...base, outcome: 'refused', message: r.text.trim() };
      return { ...base, outcome: 'other', message: r.text };
    });
    assert.equal((await stack.request('GET', '/v1.12/containers/json?all=1')).text, containersBefore, 'no intermediate container left (forcerm)');
  });

  // --- (e) pull ---

  async function pushBlob(repo: string, blob: Buffer): Promise<string> {
    const digest = `sha256:${sha256(blob)}`;
    const start = await fetch(`http://${registry.address}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await start.arrayBuffer();
    assert.equal(start.status, 202, `upload to ${repo}`);
    const url = new URL(start.headers.get('location')!, `http://${registry.address}`);
    url.searchParams.set('digest', digest);
    const put = await fetch(url, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: blob });
    assert.equal(put.status, 201, await put.text());
    return digest;
  }

  /** Pushes an image of these layers (uncompressed tars, base first) with a schema 2 manifest; resolves with its image ID here. */
  async function pushImage(repo: string, tag: string, layers: Buffer[], note: string): Promise<string> {
    const descriptors = [];
    for (const layer of layers) {
      const gz = gzipSync(layer);
      descriptors.push({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: gz.length, digest: await pushBlob(repo, gz) });
    }
    const config = Buffer.from(JSON.stringify({
      architecture: 'amd64', os: 'linux', created: '2020-09-13T12:26:40Z', config: { Cmd: ['sh'] },
      history: layers.map((_, n) => ({ created: '2020-09-13T12:26:40Z', created_by: `${note} layer ${n}` })),
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha256(l)}`) },
    }));
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: await pushBlob(repo, config) },
      layers: descriptors,
    };
    const put = await fetch(`http://${registry.address}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'Content-Type': manifest.mediaType }, body: JSON.stringify(manifest) });
    assert.equal(put.status, 201, await put.text());
    return sha256(config);
  }

  for (const withBase of [false, true]) {
    const variant = withBase ? 'on a busybox base layer' : 'the crafted layer alone';
    test(`(e) pull: the crafted layer pushed to a registry as an image (${variant}), then POST /images/create?fromImage=`, async (t) => {
      const report = new PathReport(`pull (${variant})`, 200, unnamed);
      const repoOf = (i: number) => `hp/c${i}-${withBase ? 'base' : 'alone'}`;
      // A config of its own (its history names the repository): not the image a load above made of the same layer.
      const tops = await eachLimited(corpus, CASES_AT_ONCE, (c, i) => pushImage(repoOf(i), 'v1', withBase ? [busybox, archives[i]] : [archives[i]], `pulled ${repoOf(i)}`));
      const baseId = sha256(` sha256:${sha256(busybox)}`);
      await imagePath(t, report, 'layer', async (c, _archive, i) => {
        const name = `${registry.address}/${repoOf(i)}`;
        const r = await stack.request('POST', `/v1.12/images/create?fromImage=${encodeURIComponent(name)}&tag=v1`);
        // The base layer is complete whatever the crafted one does: as Docker's pull did, it may stay (refused or not).
        const base = { status: r.status, expectIds: [tops[i]], refs: [`${name}:v1`] };
        const lines = r.status === 200 ? messages(r.text) : [];
        const error = lines.find((l) => l.error)?.error;
        if (error) return { ...base, outcome: 'refused', message: error };
        if (lines.at(-1)?.status === `Status: Downloaded newer image for ${name}:v1`) return { ...base, outcome: 'confined', message: '', image: tops[i], expectIds: withBase ? [baseId, tops[i]] : [tops[i]] };
        if (r.status === 500) return { ...base, outcome: 'refused', message: r.text.trim() };
        return { ...base, outcome: 'other', message: r.text };
      });
    });
  }

  test('every refusal, on every path, names the archive entry it refused', () => {
    assert.ok(summary.length >= 9, 'the paths ran');
    assert.deepEqual(unnamed, [], `refusals naming no entry:\n${unnamed.join('\n')}`);
  });

  // --- setuid, setgid and file capabilities ---

  describe('setuid, setgid and file capabilities survive every path', () => {
    /** A busybox root with /bin/hp-suid (4755), /bin/hp-sgid (2755, group 5) and /bin/hp-cap (cap_net_raw+ep, set with setcap). */
    let rootfsTar: Buffer;
    /** The three files alone (and bin/), for a layer on busybox. */
    let filesTar: Buffer;
    let cap: Buffer;
    const STAT = '/bin/hp-suid 4755 0:0\n/bin/hp-sgid 2755 0:5\n/bin/hp-cap 755 0:0\n';

    before(() => {
      const root = path.join(scratch, 'modes');
      fs.mkdirSync(root);
      execFileSync('tar', ['-C', root, '-xf', busyboxRootfsTar()]);
      const bin = (f: string) => path.join(root, 'bin', f);
      fs.writeFileSync(bin('hp-suid'), '#!/bin/sh\necho setuid\n');
      fs.chmodSync(bin('hp-suid'), 0o4755);
      fs.writeFileSync(bin('hp-sgid'), '#!/bin/sh\necho setgid\n');
      fs.chownSync(bin('hp-sgid'), 0, 5);
      fs.chmodSync(bin('hp-sgid'), 0o2755);
      fs.writeFileSync(bin('hp-cap'), '#!/bin/sh\necho capable\n');
      fs.chmodSync(bin('hp-cap'), 0o755);
      execFileSync('setcap', ['cap_net_raw+ep', bin('hp-cap')]);
      cap = hostXattr(bin('hp-cap'), 'security.capability')!;
      assert.ok(cap && cap.length >= 20, 'setcap wrote a file capability');
      // GNU tar writes the capability as the PAX record SCHILY.xattr.security.capability, as Docker's archives carry it.
      const pack = (...what: string[]) => execFileSync('tar', ['--format=posix', '--xattrs', '--xattrs-include=security.capability', '--numeric-owner', '-C', root, '-cf', '-', ...what], { maxBuffer: 64 * 1024 * 1024 });
      rootfsTar = pack('.');
      filesTar = pack('./bin/hp-suid', './bin/hp-sgid', './bin/hp-cap');
    });

    /** Modes as `stat` shows them inside a container of the image, and the capability through its root filesystem. */
    async function modesIn(image: string): Promise<{ stat: string; cap: Buffer | null }> {
      const run = await stack.docker(['run', '-d', image, 'sh', '-c', 'stat -c "%n %a %u:%g" /bin/hp-suid /bin/hp-sgid /bin/hp-cap; exec sleep 600']);
      assert.equal(run.code, 0, run.stderr);
      const id = run.stdout.trim();
      try {
        let stat = '';
        for (let i = 0; i < 100 && stat.split('\n').length < 4; i++) {
          stat = (await stack.docker(['logs', id])).stdout;
          if (stat.split('\n').length < 4) await sleep(50);
        }
        return { stat, cap: hostXattr(path.join(stack.root, 'containers', id, 'rootfs', 'bin', 'hp-cap'), 'security.capability') };
      } finally {
        await stack.docker(['rm', '-f', id]);
      }
    }

    /** The image's own layer as saved: the three files' header modes, owners and capability record. */
    async function savedModes(id: string): Promise<string[]> {
      const items = await savedLayer(id);
      const problems: string[] = [];
      const want: Array<[string, number, number]> = [['bin/hp-suid', 0o4755, 0], ['bin/hp-sgid', 0o2755, 5], ['bin/hp-cap', 0o755, 0]];
      for (const [name, mode, gid] of want) {
        const e = items.get(name);
        if (!e) problems.push(`${name}: not in the saved layer`);
        else if ((e.mode & 0o7777) !== mode || e.gid !== gid) problems.push(`${name}: saved as ${(e.mode & 0o7777).toString(8)} ${e.uid}:${e.gid}, not ${mode.toString(8)} 0:${gid}`);
      }
      const record = items.get('bin/hp-cap')?.pax['SCHILY.xattr.security.capability'];
      if (record === undefined || !Buffer.from(record, 'latin1').equals(cap)) problems.push(`bin/hp-cap: saved capability ${record === undefined ? 'missing' : Buffer.from(record, 'latin1').toString('hex')}, not ${cap.toString('hex')}`);
      return problems;
    }

    async function assertKept(image: string, options: { stat?: string; capability?: boolean; saved?: boolean } = {}): Promise<void> {
      const id = JSON.parse((await stack.request('GET', `/v1.12/images/${image}/json`)).text).Id as string;
      const seen = await modesIn(image);
      assert.equal(seen.stat, options.stat ?? STAT, `${image}: modes inside a container`);
      if (options.capability !== false) assert.deepEqual(seen.cap?.toString('hex'), cap.toString('hex'), `${image}: the file capability, byte for byte`);
      if (options.saved !== false) assert.deepEqual(await savedModes(id), [], `${image}: its saved layer`);
    }

    test('import', async () => {
      const r = await stack.request('POST', '/v1.12/images/create?fromSrc=-&repo=hp-modes&tag=import', { body: rootfsTar });
      assert.equal(r.status, 200, r.text);
      await assertKept('hp-modes:import');
    });

    test('load, both layouts', async () => {
      const legacy = legacyArchive('hp-modes-legacy', 0, filesTar, true);
      assert.equal((await stack.request('POST', '/v1.12/images/load', { body: await legacy.archive })).status, 200);
      await assertKept('hp-modes-legacy:c0');
      const modern = manifestArchive('hp-modes-manifest', 0, rootfsTar, false);
      assert.equal((await stack.request('POST', '/v1.12/images/load', { body: await modern.archive })).status, 200);
      await assertKept('hp-modes-manifest:c0');
    });

    test('pull', async () => {
      await pushImage('hp/modes', 'v1', [busybox, filesTar], 'modes');
      const pulled = await stack.docker(['pull', `${registry.address}/hp/modes:v1`]);
      assert.equal(pulled.code, 0, pulled.stderr);
      await assertKept(`${registry.address}/hp/modes:v1`);
    });

    test('commit of a container that touched the files (their copies in its layer), and save of that', async () => {
      const run = await stack.docker(['run', '--name', 'hp-toucher', 'hp-modes:import', 'touch', '/bin/hp-suid', '/bin/hp-sgid', '/bin/hp-cap']);
      assert.equal(run.code, 0, run.stderr);
      const diff = (await stack.docker(['diff', 'hp-toucher'])).stdout;
      assert.match(diff, /^C \/bin\/hp-suid$/m, 'the files are the container\'s own now');
      const committed = await stack.docker(['commit', 'hp-toucher', 'hp-modes:commit']);
      assert.equal(committed.code, 0, committed.stderr);
      assert.equal((await stack.docker(['rm', 'hp-toucher'])).code, 0);
      await assertKept('hp-modes:commit');
    });

    test('build: ADD of a tar holding the files, and RUN chmod 4755 / 2755', async () => {
      const context = (files: Record<string, Buffer | string>) => tarBuffer(new Map(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])));
      const add = await stack.request('POST', '/v1.12/build?t=hp-modes:add', { body: await context({ Dockerfile: 'FROM busybox\nADD modes.tar /\n', 'modes.tar': filesTar }) });
      assert.match(add.text, /Successfully built/, add.text);
      // What ADD puts in is root's (Docker 1.0's builder): the group goes, the bits stay.
      await assertKept('hp-modes:add', { stat: STAT.replace('2755 0:5', '2755 0:0'), saved: false });
      const addId = JSON.parse((await stack.request('GET', '/v1.12/images/hp-modes:add/json')).text).Id as string;
      const items = await savedLayer(addId);
      assert.deepEqual(['bin/hp-suid', 'bin/hp-sgid', 'bin/hp-cap'].map((n) => (items.get(n)!.mode & 0o7777).toString(8)), ['4755', '2755', '755']);
      assert.equal(Buffer.from(items.get('bin/hp-cap')!.pax['SCHILY.xattr.security.capability'] ?? '', 'latin1').toString('hex'), cap.toString('hex'));

      const dockerfile = 'FROM busybox\nRUN echo "#!/bin/sh" > /bin/hp-suid && echo x > /bin/hp-sgid && echo y > /bin/hp-cap && chgrp 5 /bin/hp-sgid && chmod 4755 /bin/hp-suid && chmod 2755 /bin/hp-sgid && chmod 755 /bin/hp-cap\n';
      const chmod = await stack.request('POST', '/v1.12/build?t=hp-modes:run', { body: await context({ Dockerfile: dockerfile }) });
      assert.match(chmod.text, /Successfully built/, chmod.text);
      await assertKept('hp-modes:run', { capability: false, saved: false });
      const runItems = await savedLayer(JSON.parse((await stack.request('GET', '/v1.12/images/hp-modes:run/json')).text).Id);
      assert.deepEqual(['bin/hp-suid', 'bin/hp-sgid'].map((n) => `${(runItems.get(n)!.mode & 0o7777).toString(8)} ${runItems.get(n)!.gid}`), ['4755 0', '2755 5']);
    });
  });
});
