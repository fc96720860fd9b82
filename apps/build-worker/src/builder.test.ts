// The builder against fakes of the container runtime and the image store:
// what it asks of them for each instruction, and the rm/forcerm rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import type { OutputEntry } from '@stevedore/builds';
import type { images } from '@stevedore/contracts';
import type { ContainerConfig } from '@stevedore/docker-api';
import { notFound } from '@stevedore/errors';
import type { Attachment, BaseImage, BuildImageStore, BuildRuntime, ContainerOutput } from './build-backends';
import { BuildCache } from './build-cache';
import { BuildContainers, containerNamePrefix } from './build-containers';
import { BuildCancelled, Builder, type BuildOptions } from './builder';
import { BuildContext } from './context';

const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');
const BASE = hex('busybox');
const short = (id: string) => id.slice(0, 12);

/** What a fake container does when it runs: its output, then its exit status (or it runs until killed). */
type Behaviour = { out?: string; err?: string; status?: number; untilKilled?: boolean };

class FakeRuntime implements BuildRuntime {
  /** Every call, in order: "create <name>", "start <id>", … */
  readonly calls: string[] = [];
  readonly configs = new Map<string, ContainerConfig>();
  /** What each container was given by putArchive: entry name → content. */
  readonly uploads = new Map<string, Map<string, string>>();
  private readonly exits = new Map<string, Promise<number>>();
  private readonly kills = new Map<string, () => void>();
  private readonly outputs = new Map<string, (output: ContainerOutput) => Promise<void>>();

  /** `behave` answers for a command, e.g. "echo hi". */
  constructor(private readonly behave: (command: string) => Behaviour = () => ({})) {}

  async create(name: string, config: ContainerConfig) {
    const id = hex(name);
    this.calls.push(`create ${name}`);
    this.configs.set(id, config);
    return { id, warnings: [] };
  }

  async start(id: string) {
    this.calls.push(`start ${short(id)}`);
    const cmd = this.configs.get(id)?.Cmd ?? [];
    const b = this.behave(cmd.slice(2).join(' '));
    const killed = new Promise<void>((resolve) => this.kills.set(id, resolve));
    this.exits.set(
      id,
      (async () => {
        const onOutput = this.outputs.get(id);
        if (b.out) await onOutput?.({ stream: 'out', data: Buffer.from(b.out) });
        if (b.err) await onOutput?.({ stream: 'err', data: Buffer.from(b.err) });
        if (b.untilKilled) {
          await killed;
          return 137;
        }
        return b.status ?? 0;
      })(),
    );
  }

  async wait(id: string) {
    return this.exits.get(id)!;
  }

  async kill(id: string) {
    this.calls.push(`kill ${short(id)}`);
    this.kills.get(id)?.();
  }

  attach(id: string, onOutput: (output: ContainerOutput) => Promise<void>): Attachment {
    this.outputs.set(id, onOutput);
    return { ended: Promise.resolve().then(() => this.exits.get(id)).then(() => undefined), cancel: () => undefined };
  }

  async putArchive(id: string, target: string, archive: Readable) {
    this.calls.push(`put ${short(id)} ${target}`);
    const files = new Map<string, string>();
    const extract = tar.extract();
    extract.on('entry', (header, content, next) => {
      const chunks: Buffer[] = [];
      content.on('data', (c) => chunks.push(c as Buffer)).on('end', () => {
        files.set(`${header.name}:${header.uid}`, Buffer.concat(chunks).toString());
        next();
      });
    });
    await new Promise<void>((resolve, reject) => {
      extract.on('finish', resolve).on('error', reject);
      archive.on('error', reject).pipe(extract);
    });
    this.uploads.set(id, files);
  }

  async remove(id: string) {
    this.calls.push(`remove ${short(id)}`);
  }
}

class FakeStore implements BuildImageStore {
  readonly calls: string[] = [];
  readonly commits: images.CommitHeader[] = [];
  /** Images by name and by ID. */
  readonly images = new Map<string, BaseImage>([['busybox', { id: BASE, config: { Cmd: ['sh'] }, chain: [] }]]);
  /** Answers of findCached: "<parent> <command>" → image ID. */
  readonly cached = new Map<string, string>();
  /** What a pull yields, by "repo:tag". */
  readonly registry = new Map<string, { progress: images.Progress[]; image?: BaseImage }>();

  async base(name: string) {
    this.calls.push(`base ${name}`);
    const found = this.images.get(name);
    if (!found) throw notFound(`No such image: ${name}`);
    return found;
  }

  async *pull(repo: string, tag: string, heldCredentials: string) {
    this.calls.push(`pull ${repo}:${tag} ${heldCredentials}`);
    const remote = this.registry.get(`${repo}:${tag}`);
    for (const p of remote?.progress ?? []) yield p;
    if (remote?.image) this.images.set(repo, remote.image);
  }

  async findCached(parent: string, containerConfig: ContainerConfig) {
    const command = (containerConfig.Cmd ?? []).slice(2).join(' ');
    this.calls.push(`findCached ${short(parent)} ${command}`);
    return { id: this.cached.get(`${parent} ${command}`) ?? '', chain: [] };
  }

  async commit(header: images.CommitHeader) {
    this.commits.push(header);
    const id = hex(`image of ${header.containerId}`);
    this.calls.push(`commit ${short(header.containerId)} on ${short(header.parent)}`);
    return id;
  }

  async tag(image: string, repo: string, tag: string) {
    this.calls.push(`tag ${short(image)} ${repo}:${tag}`);
  }
}

type File = { name: string; body: string | Buffer; uid?: number };

function tarOf(files: File[]): Readable {
  const pack = tar.pack();
  for (const f of files) pack.entry({ name: f.name, mode: 0o644, uid: f.uid ?? 0 }, f.body);
  pack.finalize();
  return pack as unknown as Readable;
}

async function tarBytes(files: File[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of tarOf(files) as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

interface Run {
  output: OutputEntry[];
  /** The output's text, as the CLI shows it. */
  text(): string;
  /** Names of containers recorded and not forgotten: what a sweep would still remove. */
  recorded: Set<string>;
  result: Promise<string>;
}

async function build(files: File[], runtime: FakeRuntime, store: FakeStore, options: Partial<BuildOptions> & { nocache?: boolean } = {}, signal = new AbortController().signal): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'builder-test-'));
  test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const context = await BuildContext.fromTar(tarOf(files), dir);
  const output: OutputEntry[] = [];
  const recorded = new Set<string>();
  const say = async (entry: OutputEntry) => void output.push(entry);
  const buildId = hex('build');
  const containers = new BuildContainers(containerNamePrefix(buildId, 1), runtime, { record: async (n) => void recorded.add(n), forget: async (n) => void recorded.delete(n) }, (text) => say({ kind: 'out', text }));
  const builder = new Builder(
    { buildId, context, workDir: dir, quiet: false, rm: true, forcerm: false, tag: '', heldCredentials: '', ...options },
    { store, containers, cache: new BuildCache(store, options.nocache ?? false), output: say },
    signal,
  );
  const result = builder.run();
  result.catch(() => undefined);
  return { output, recorded, result, text: () => output.map((e) => e.text).join('') };
}

const dockerfile = (text: string): File => ({ name: 'Dockerfile', body: text });

test('RUN: a container of the parent image runs the command alone, is committed on the parent, and removed under rm', async () => {
  const runtime = new FakeRuntime((c) => (c === 'echo hi' ? { out: 'hi\n' } : {}));
  const store = new FakeStore();
  const run = await build([dockerfile('FROM busybox\nRUN echo hi\n')], runtime, store, { tag: 'crew/app:v1' });
  const image = await run.result;

  const container = hex(`build_${hex('build').slice(0, 12)}_1`);
  assert.deepEqual(runtime.configs.get(container), { Cmd: ['/bin/sh', '-c', 'echo hi'], Image: BASE, Env: ['HOME=/', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Entrypoint: null, AttachStdout: true, AttachStderr: true });
  assert.deepEqual(runtime.calls, [`create build_${hex('build').slice(0, 12)}_1`, `start ${short(container)}`, `remove ${short(container)}`]);
  assert.equal(store.commits.length, 1);
  assert.equal(store.commits[0].containerId, container);
  assert.equal(store.commits[0].parent, BASE);
  assert.deepEqual(JSON.parse(store.commits[0].containerConfigJson).Cmd, ['/bin/sh', '-c', 'echo hi'], 'the cache compares the step\'s config, not the run\'s');
  assert.equal(image, hex(`image of ${container}`));
  assert.equal(store.calls.at(-1), `tag ${short(image)} crew/app:v1`);
  assert.equal(
    run.text(),
    `Step 0 : FROM busybox\n ---> ${short(BASE)}\nStep 1 : RUN echo hi\n ---> Running in ${short(container)}\nhi\n ---> ${short(image)}\n` +
      `Removing intermediate container ${short(container)}\nSuccessfully built ${short(image)}\n`,
  );
  assert.deepEqual(run.recorded, new Set(), 'a removed container is forgotten');
});

test('without rm the containers stay, and are the user\'s: no record is left for a sweep', async () => {
  const runtime = new FakeRuntime();
  const run = await build([dockerfile('FROM busybox\nRUN true\nCMD ["sh"]\n')], runtime, new FakeStore(), { rm: false });
  await run.result;
  assert.equal(runtime.calls.filter((c) => c.startsWith('create')).length, 2, 'RUN and CMD each make a container');
  assert.deepEqual(runtime.calls.filter((c) => c.startsWith('remove')), []);
  assert.deepEqual(run.recorded, new Set());
});

test('a failing step: with forcerm every container goes, without it the failed one stays', async () => {
  const failing = [dockerfile('FROM busybox\nRUN echo first\nRUN echo oops >&2; exit 3\nRUN echo never\n')];
  const behave = (c: string): Behaviour => (c.includes('exit 3') ? { err: 'oops\n', status: 3 } : {});

  const forced = new FakeRuntime(behave);
  const run = await build(failing, forced, new FakeStore(), { rm: false, forcerm: true });
  await assert.rejects(run.result, { message: 'The command [/bin/sh -c echo oops >&2; exit 3] returned a non-zero code: 3' });
  const created = forced.calls.filter((c) => c.startsWith('create')).map((c) => short(hex(c.slice('create '.length))));
  assert.equal(created.length, 2, 'the step after the failure never ran');
  assert.deepEqual(forced.calls.filter((c) => c.startsWith('remove')), created.map((id) => `remove ${id}`));
  assert.ok(run.output.some((e) => e.kind === 'err' && e.text === 'oops\n'), 'the command\'s stderr is on the error stream');
  assert.match(run.text(), new RegExp(`Removing intermediate container ${created[1]}\n$`));

  const kept = new FakeRuntime(behave);
  const plain = await build(failing, kept, new FakeStore(), { rm: true, forcerm: false });
  await assert.rejects(plain.result, /returned a non-zero code: 3/);
  const removed = kept.calls.filter((c) => c.startsWith('remove'));
  assert.equal(removed.length, 1, 'rm removed the first step\'s container only');
  assert.deepEqual(plain.recorded, new Set(), 'the failed container is the user\'s: no sweep takes it');
});

test('a cache hit creates no container; the chain below FROM answers without asking; after a commit nothing is asked', async () => {
  const runtime = new FakeRuntime();
  const store = new FakeStore();
  const cachedRun = hex('cached run');
  store.cached.set(`${BASE} echo cached`, cachedRun);
  const run = await build([dockerfile('FROM busybox\nRUN echo cached\nRUN echo new\nRUN echo after\n')], runtime, store);
  await run.result;
  assert.deepEqual(store.calls.filter((c) => c.startsWith('findCached')), [`findCached ${short(BASE)} echo cached`, `findCached ${short(cachedRun)} echo new`]);
  assert.equal(runtime.calls.filter((c) => c.startsWith('create')).length, 2);
  assert.equal(store.commits[0].parent, cachedRun, 'the step after a hit builds on the cached image');
  assert.match(run.text(), new RegExp(`Step 1 : RUN echo cached\n ---> Using cache\n ---> ${short(cachedRun)}\nStep 2`));

  const chained = new FakeStore();
  const link = hex('linked');
  const env = ['HOME=/', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  chained.images.set('busybox', { id: BASE, config: {}, chain: [{ id: link, containerConfigJson: JSON.stringify({ Cmd: ['/bin/sh', '-c', 'echo linked'], Env: env, Image: BASE }) }] });
  const second = new FakeRuntime();
  const linked = await build([dockerfile('FROM busybox\nRUN echo linked\n')], second, chained);
  assert.equal(await linked.result, link);
  assert.deepEqual(chained.calls.filter((c) => c.startsWith('findCached')), []);
  assert.deepEqual(second.calls, []);

  const uncached = new FakeRuntime();
  const nocache = await build([dockerfile('FROM busybox\nRUN echo cached\n')], uncached, store, { nocache: true });
  await nocache.result;
  assert.equal(uncached.calls.filter((c) => c.startsWith('create')).length, 1, 'nocache runs every step');
});

test('FROM of an image that is not here pulls its latest tag with the build\'s credentials; a failed pull ends the build with its message', async () => {
  const store = new FakeStore();
  store.registry.set('crew/base:latest', { progress: [{ status: 'Pulling repository crew/base', id: '', current: 0, total: 0, start: 0, error: '', perLayer: false }], image: { id: hex('crew/base'), config: {}, chain: [] } });
  const pulled = await build([dockerfile('FROM crew/base\n')], new FakeRuntime(), store, { heldCredentials: 'held-1' });
  assert.equal(await pulled.result, hex('crew/base'));
  assert.deepEqual(store.calls.slice(0, 3), ['base crew/base', 'pull crew/base:latest held-1', 'base crew/base']);
  assert.deepEqual(pulled.output[1], { kind: 'raw', text: '{"status":"Pulling repository crew/base"}' });

  const missing = new FakeStore();
  const message = 'manifest for nosuch/image:latest not found: manifest unknown';
  missing.registry.set('nosuch/image:latest', { progress: [{ status: '', id: '', current: 0, total: 0, start: 0, error: message, perLayer: false }] });
  const runtime = new FakeRuntime();
  const failed = await build([dockerfile('FROM nosuch/image\nRUN true\n')], runtime, missing);
  await assert.rejects(failed.result, { message });
  assert.deepEqual(runtime.calls, []);
  assert.equal(failed.text(), 'Step 0 : FROM nosuch/image\n');

  const notPulled = new FakeStore();
  const quiet = await build([dockerfile('FROM nosuch/image\n')], new FakeRuntime(), notPulled);
  await assert.rejects(quiet.result, { message: 'No such image: nosuch/image' }, 'a pull that brought nothing leaves the store\'s answer');
});

test('a cancelled build kills its running container and removes every container, whatever rm says', async () => {
  const runtime = new FakeRuntime((c) => (c === 'sleep 60' ? { out: 'started\n', untilKilled: true } : {}));
  const controller = new AbortController();
  const run = await build([dockerfile('FROM busybox\nRUN echo first\nRUN sleep 60\n')], runtime, new FakeStore(), { rm: false }, controller.signal);
  while (!run.output.some((e) => e.text === 'started\n')) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  await assert.rejects(run.result, BuildCancelled);
  const created = runtime.calls.filter((c) => c.startsWith('create')).map((c) => short(hex(c.slice('create '.length))));
  assert.ok(runtime.calls.includes(`kill ${created[1]}`));
  assert.deepEqual(runtime.calls.filter((c) => c.startsWith('remove')), created.map((id) => `remove ${id}`));
  assert.deepEqual(run.recorded, new Set());
});

test('ADD unpacks an archive of the context (compressed or not), copies other files, all owned by root', async () => {
  const inner = await tarBytes([{ name: 'etc/motd', body: 'hello', uid: 1000 }]);
  const runtime = new FakeRuntime();
  const store = new FakeStore();
  const files = [dockerfile('FROM busybox\nWORKDIR /srv\nADD bundle.tar.gz unpacked/\nADD notes.txt .\nCOPY plain.tar copied.tar\n'), { name: 'bundle.tar.gz', body: gzipSync(inner) }, { name: 'notes.txt', body: 'a note' }, { name: 'plain.tar', body: inner }];
  const run = await build(files, runtime, store);
  await run.result;
  const puts = runtime.calls.filter((c) => c.startsWith('put')).map((c) => c.split(' ')[2]);
  assert.deepEqual(puts, ['/srv/unpacked/', '/srv/', '/srv']);
  const uploads = [...runtime.uploads.values()].map((files) => Object.fromEntries(files));
  assert.deepEqual(uploads[0], { 'etc/motd:0': 'hello' });
  assert.deepEqual(uploads[1], { 'notes.txt:0': 'a note' });
  assert.deepEqual(Object.keys(uploads[2]), ['copied.tar:0'], 'COPY never unpacks');
  assert.match(JSON.parse(store.commits[1].containerConfigJson).Cmd[2], /^#\(nop\) ADD file:[0-9a-f]{64} in unpacked\/$/);
});
