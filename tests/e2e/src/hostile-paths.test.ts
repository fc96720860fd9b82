// The crafted-archive corpus (hostile-archives.ts) through every path of the
// API that extracts an archive: import, load (Docker 1.0's layout and the
// manifest.json one, a crafted layer alone or on a busybox base layer), a
// copy into a running container (below / and at /), a build's `ADD x.tar /`,
// and a pull from a registry. For each case and path: the outcome its
// `expect` gives, a refusal with Docker 1.0's status and a message naming
// the entry, what an accepted archive wrote found inside, the canary on the
// host unchanged, and nothing left behind (no image, no layer directory, no
// container). What the cases should give and how it is checked is in
// hostile-checks.ts; setuid, setgid and file capabilities through the same
// paths are hostile-modes.test.ts.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hostileCorpus, hostileTar, makeCanary, snapshotTree, type CanaryEntry, type HostileCase } from './hostile-archives';
import { busyboxRootfsTar, makeTar, tarBuffer } from './images-fixtures';
import { shortTempDir, sleep, startRegistry, startStackWithBusybox, stopStack, type Stack } from './harness';
import { CASES_AT_ONCE, checkInTar, checkOnHost, COPY_DIR, eachLimited, expected, insideFacts, messages, PathReport, type Extraction, type Seen } from './hostile-checks';
import { legacyArchive, manifestArchive, pushImage, savedLayer, sha256 } from './crafted-images';

describe('crafted archives through every path of the API that extracts', () => {
  let stack: Stack;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  /** The canary's parent: nothing beside the canary may appear either. */
  let work: string;
  let canary: string;
  let canaryBefore: Record<string, CanaryEntry>;
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
    if (work) execFileSync('rm', ['-rf', work]);
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

  /** The facts of an accepted case checked in the image it made: problems. */
  async function checkImage(c: HostileCase, how: Extraction, id: string): Promise<string[]> {
    const facts = insideFacts(c, canary, how);
    if (!facts) return [`${c.name}: accepted, but nothing is known of what it writes`];
    const items = await savedLayer(stack, id);
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

  for (const layout of ['Docker 1.0 layout', 'manifest.json layout'] as const) {
    for (const withBase of [false, true]) {
      const variant = `${layout}, ${withBase ? 'on a busybox base layer' : 'the crafted layer alone'}`;
      test(`(b) load, ${variant}`, async (t) => {
        const report = new PathReport(`load (${variant})`, 500, unnamed);
        await imagePath(t, report, 'layer', async (c, crafted, i) => {
          const repo = `hp-load-${layout === 'Docker 1.0 layout' ? 'legacy' : 'manifest'}-${withBase ? 'base' : 'alone'}`;
          const { archive, ids } = (layout === 'Docker 1.0 layout' ? legacyArchive : manifestArchive)(repo, i, crafted, withBase ? busybox : null);
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

  for (const withBase of [false, true]) {
    const variant = withBase ? 'on a busybox base layer' : 'the crafted layer alone';
    test(`(e) pull: the crafted layer pushed to a registry as an image (${variant}), then POST /images/create?fromImage=`, async (t) => {
      const report = new PathReport(`pull (${variant})`, 200, unnamed);
      const repoOf = (i: number) => `hp/c${i}-${withBase ? 'base' : 'alone'}`;
      // A config of its own (its history names the repository): not the image a load above made of the same layer.
      const tops = await eachLimited(corpus, CASES_AT_ONCE, (c, i) => pushImage(registry.address, repoOf(i), 'v1', withBase ? [busybox, archives[i]] : [archives[i]], `pulled ${repoOf(i)}`));
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
});
