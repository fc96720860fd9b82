// One build, step by step, as Docker 1.0's builder ran it (../shared/api/BUILDER.md):
// each step through the image store (the cache, commits, pulls) and the
// container runtime (a container per RUN and per commit), its lines on the
// build's output stream. The rm/forcerm rules are applied after each step;
// every intermediate container's name is recorded (by `record`) before the
// container is created, so that a sweep finds it whatever happens.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { decompress } from '@stevedore/archive';
import type { OutputEntry } from '@stevedore/builds';
import type { containers, images } from '@stevedore/contracts';
import type { ContainerConfig, StoredImage } from '@stevedore/docker-api';
import { jsonMessage, sameBuildConfig, splitRepoTag } from '@stevedore/docker-api';
import { asStevedoreError, refused, StevedoreError } from '@stevedore/errors';
import { callOptions, callUnary, commitContainer, pumpInto, type CommitFailure } from '@stevedore/service-kit';
import type { BuildContext, ContextEntry } from './context';
import { commandOf, goList, jsonArray, parseDockerfile, replaceEnv, type Step } from './dockerfile';

const DEFAULT_ENV = ['HOME=/', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
const FORBIDDEN_TRIGGERS = ['ONBUILD', 'FROM', 'MAINTAINER'];

export interface BuildOptions {
  buildId: string;
  context: BuildContext;
  /** The build's own directory (downloads of ADD go there). */
  workDir: string;
  quiet: boolean;
  nocache: boolean;
  rm: boolean;
  forcerm: boolean;
  tag: string;
  /** The reference of this build's registry credentials in the image store ('' for none). */
  heldCredentials: string;
  requestId: string;
}

export interface BuildServices {
  runtime: containers.ContainerRuntimeClient;
  store: images.ImageStoreClient;
  /** Appends a line to the build's output. */
  output(entry: OutputEntry): Promise<void>;
  /** Records the name of an intermediate container before it is created; `forget` after it is removed. */
  record(name: string): Promise<void>;
  forget(name: string): Promise<void>;
}

export class BuildCancelled extends StevedoreError {
  constructor() {
    super('refused', 'The build was cancelled: its client went away');
  }
}

const short = (id: string) => id.slice(0, 12);

/** The sha256 of a downloaded file's content. */
async function fileChecksum(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Whether a context file is an archive ADD extracts: compressed (gzip, bzip2, xz) or a tar. */
function isArchive(context: BuildContext, entry: ContextEntry): boolean {
  const head = context.read({ ...entry, size: Math.min(entry.size, 512) });
  const n = head.length;
  if (n >= 3 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (n >= 3 && head.subarray(0, 3).toString() === 'BZh') return true;
  if (n >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
  return n === 512 && head.subarray(257, 262).toString() === 'ustar';
}

/**
 * What ADD/COPY puts in the container, as tar entries owned by root at names
 * relative to the target directory: a context directory's contents, a
 * context file (under a name), a context archive's entries, or a downloaded file.
 */
type Placement =
  | { kind: 'tree'; entry: ContextEntry }
  | { kind: 'file'; entry: ContextEntry; name: string }
  | { kind: 'archive'; entry: ContextEntry }
  | { kind: 'download'; file: string; name: string };

function placementTar(context: BuildContext, placements: Placement[]): Readable {
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

export class Builder {
  private image = '';
  /** The current image was committed by this build (its children cannot exist). */
  private madeHere = false;
  /** Below the last cache hit: its most recent child, that one's, … (see cached()). */
  private cacheChain: images.CachedLink[] = [];
  private config: ContainerConfig = {};
  private maintainer = '';
  /** Intermediate containers not removed yet: [ID, recorded name]. */
  private readonly intermediates: Array<[string, string]> = [];
  private containerSeq = 0;

  constructor(
    private readonly o: BuildOptions,
    private readonly s: BuildServices,
    private readonly signal: AbortSignal,
  ) {}

  private out(text: string) {
    return this.s.output({ kind: 'out', text });
  }

  private unary<Req, Res>(client: object, method: unknown, req: Req, timeoutMs = 600_000): Promise<Res> {
    return callUnary(client as never, method as never, req, this.o.requestId, timeoutMs);
  }

  /** Runs the build; resolves with the image's ID. Intermediate containers are handled by the rules whatever happens. */
  async run(): Promise<string> {
    const text = this.o.context.dockerfile();
    if (text === undefined) throw refused("Can't build a directory with no Dockerfile");
    // Docker 1.0: only a file of no bytes is "empty"; blank lines make a build that generates nothing.
    if (text.length === 0) throw refused('Dockerfile cannot be empty');
    const steps = parseDockerfile(text);
    try {
      for (const [n, step] of steps.entries()) await this.step(String(n), step);
      if (!this.image) throw refused('No image was generated. This may be because the Dockerfile does not, like, do anything.');
    } catch (err) {
      // A cancelled build leaves nothing, whatever rm and forcerm say.
      if (this.o.forcerm || err instanceof BuildCancelled || this.signal.aborted) await this.removeIntermediates();
      await this.keepIntermediates();
      throw this.signal.aborted ? new BuildCancelled() : err;
    }
    await this.keepIntermediates();
    await this.out(`Successfully built ${short(this.image)}\n`);
    if (this.o.tag) {
      const { repo, tag = '' } = splitRepoTag(this.o.tag);
      // Docker 1.0 ignored a failing tag operation.
      await this.unary(this.s.store, this.s.store.tag, { name: this.image, repo, tag, force: true }).catch(() => undefined);
    }
    return this.image;
  }

  private async step(n: string, step: Step): Promise<void> {
    if (this.signal.aborted) throw new BuildCancelled();
    await this.out(`Step ${n} : ${step.line}\n`);
    const shown = await this.dispatch(step);
    if (shown) await this.out(` ---> ${short(this.image)}\n`);
    if (this.o.rm) await this.removeIntermediates();
  }

  /** Runs one instruction; false when the step shows no image (an unknown instruction). */
  private async dispatch({ instruction, args }: Step): Promise<boolean> {
    switch (instruction) {
      case 'FROM':
        await this.from(args);
        return true;
      case 'MAINTAINER':
        this.maintainer = args;
        await this.commitMeta(`MAINTAINER ${args}`);
        return true;
      case 'RUN':
        await this.runStep(commandOf(args));
        return true;
      case 'CMD':
        this.config.Cmd = commandOf(args);
        await this.commitMeta(`CMD ${goList(this.config.Cmd)}`);
        return true;
      case 'ENTRYPOINT':
        this.config.Entrypoint = commandOf(args);
        await this.commitMeta(`ENTRYPOINT ${goList(this.config.Entrypoint)}`);
        return true;
      case 'EXPOSE': {
        const ports = { ...(this.config.ExposedPorts ?? {}) } as Record<string, object>;
        for (const spec of [...(this.config.PortSpecs ?? []), ...args.split(' ').filter(Boolean)]) {
          const [port, proto = 'tcp'] = spec.split(':').pop()!.split('/');
          if (!/^\d+$/.test(port) || !['tcp', 'udp'].includes(proto)) throw refused(`Invalid port specification: ${spec}`);
          ports[`${port}/${proto}`] = {};
        }
        this.config.ExposedPorts = ports;
        this.config.PortSpecs = null;
        await this.commitMeta(`EXPOSE map[${Object.keys(ports).sort().map((k) => `${k}:{}`).join(' ')}]`);
        return true;
      }
      case 'ENV': {
        const space = args.indexOf(' ');
        if (space < 0) throw refused('Invalid ENV format');
        const key = args.slice(0, space).trim();
        const value = replaceEnv(args.slice(space + 1).trim(), this.config.Env ?? []);
        const env = (this.config.Env ?? []).filter((e) => !e.startsWith(`${key}=`));
        const at = (this.config.Env ?? []).findIndex((e) => e.startsWith(`${key}=`));
        if (at >= 0) env.splice(at, 0, `${key}=${value}`);
        else env.push(`${key}=${value}`);
        this.config.Env = env;
        await this.commitMeta(`ENV ${key}=${value}`);
        return true;
      }
      case 'ADD':
      case 'COPY':
        await this.add(instruction, args);
        return true;
      case 'VOLUME': {
        const list = jsonArray(args) ?? [args];
        if (!args || list.some((v) => !v)) throw refused('Volume cannot be empty');
        this.config.Volumes = { ...(this.config.Volumes ?? {}), ...Object.fromEntries(list.map((v) => [v, {}])) };
        await this.commitMeta(`VOLUME ${args}`);
        return true;
      }
      case 'USER':
        this.config.User = args;
        await this.commitMeta(`USER ${args}`);
        return true;
      case 'WORKDIR':
        this.config.WorkingDir = path.posix.resolve(this.config.WorkingDir || '/', args);
        await this.commitMeta(`WORKDIR ${args}`);
        return true;
      case 'ONBUILD': {
        const first = args.split(' ')[0].toUpperCase();
        if (first === 'ONBUILD') throw refused('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
        if (FORBIDDEN_TRIGGERS.includes(first)) throw refused(`${first} isn't allowed as an ONBUILD trigger`);
        this.config.OnBuild = [...(this.config.OnBuild ?? []), args];
        await this.commitMeta(`ONBUILD ${args}`);
        return true;
      }
      case 'INSERT':
        throw refused('INSERT has been deprecated. Please use ADD instead');
      default:
        await this.s.output({ kind: 'err', text: `# Skipping unknown instruction ${instruction}\n` });
        return false;
    }
  }

  private async from(name: string): Promise<void> {
    const base = () => this.unary<images.BuildBaseRequest, images.BuildBaseResponse>(this.s.store, this.s.store.buildBase, { name }, 10_000);
    let found = await base().catch((err) => {
      if (asStevedoreError(err).kind !== 'notFound') throw err;
      return undefined;
    });
    if (!found) {
      await this.pull(name);
      found = await base();
    }
    const meta = JSON.parse(found.image!.metadataJson) as StoredImage;
    this.image = found.image!.id;
    this.madeHere = false;
    this.cacheChain = found.chain;
    this.config = { ...(meta.config ?? {}) };
    if (!this.config.Env?.length) this.config.Env = [...DEFAULT_ENV];
    const triggers = this.config.OnBuild ?? [];
    if (!triggers.length) return;
    await this.s.output({ kind: 'err', text: `# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n` });
    for (const t of triggers) {
      const first = t.split(' ')[0].toUpperCase();
      if (first === 'ONBUILD') throw refused(`Source image contains forbidden chained \`ONBUILD ONBUILD\` trigger: ${t}`);
      if (FORBIDDEN_TRIGGERS.includes(first)) throw refused(`Source image contains forbidden ${first} trigger: ${t}`);
    }
    this.config.OnBuild = [];
    for (const [i, t] of triggers.entries()) {
      const [trigger] = parseDockerfile(t);
      await this.step(`onbuild-${i}`, trigger);
    }
  }

  /** FROM of an image that is not here: pulled with the build's credentials for its registry, its progress in the output. */
  private async pull(name: string): Promise<void> {
    const { repo, tag = '' } = splitRepoTag(name);
    // FROM without a tag means `latest` (a pull without one would take every tag).
    const call = this.s.store.pull({ image: repo, tag: tag || 'latest', auth: undefined, heldCredentials: this.o.heldCredentials, oneAtATime: false }, callOptions(this.o.requestId).metadata);
    for await (const p of call as AsyncIterable<images.Progress>) {
      if (p.error) throw refused(p.error);
      await this.s.output({ kind: 'raw', text: jsonMessage({ status: p.status, id: p.id || undefined, current: p.current || undefined, total: p.total || undefined, start: p.start || undefined, perLayer: p.perLayer }).trimEnd() });
    }
  }

  private requireImage(what: 'run' | 'commit'): void {
    if (!this.image) throw refused(`Please provide a source image with \`from\` prior to ${what}`);
  }

  /**
   * The build cache: an image made from the same config on top of the
   * current one. The image store's answers (FROM's and each look-up's) carry
   * the chain of most recent children below the image: a step whose config
   * matches the next link is a hit without another call. After a miss nothing is asked: an image this build
   * just made has no children.
   */
  private async cached(containerConfig: ContainerConfig): Promise<boolean> {
    if (this.o.nocache || this.madeHere) return false;
    let id: string;
    const next = this.cacheChain.shift();
    if (next && sameBuildConfig(JSON.parse(next.containerConfigJson) as ContainerConfig, containerConfig)) id = next.id;
    else {
      const found = await this.unary<images.FindCachedRequest, images.FindCachedResponse>(this.s.store, this.s.store.findCached, { parent: this.image, containerConfigJson: JSON.stringify(containerConfig) }, 10_000);
      id = found.id;
      this.cacheChain = found.chain;
    }
    if (!id) return false;
    await this.out(' ---> Using cache\n');
    this.image = id;
    return true;
  }

  /** Creates an intermediate container, its name recorded first. */
  private async create(config: ContainerConfig): Promise<string> {
    const name = `build_${this.o.buildId.slice(0, 12)}_${++this.containerSeq}`;
    await this.s.record(name);
    const r = await this.unary<containers.CreateRequest, containers.CreateResponse>(this.s.runtime, this.s.runtime.create, { name, configJson: JSON.stringify(config), hostConfigJson: '' }, 30_000);
    this.intermediates.push([r.id, name]);
    for (const w of r.warnings) await this.out(` ---> [Warning] ${w}\n`);
    return r.id;
  }

  private async commit(containerId: string, containerConfig: ContainerConfig): Promise<void> {
    const header: images.CommitHeader = {
      containerId,
      containerConfigJson: JSON.stringify(containerConfig),
      parent: this.image,
      repo: '',
      tag: '',
      comment: '',
      author: this.maintainer,
      configJson: JSON.stringify({ ...this.config, Image: this.image }),
      exactConfig: true,
    };
    this.image = await commitContainer(this.s.runtime, this.s.store, header, this.o.requestId).catch((f: CommitFailure) => {
      throw f.err;
    });
    this.madeHere = true;
    this.cacheChain = [];
  }

  /** MAINTAINER, CMD, ENV, …: a commit of a container that never runs, its command a `#(nop)` summary. */
  private async commitMeta(summary: string): Promise<void> {
    this.requireImage('commit');
    const containerConfig: ContainerConfig = { ...this.config, Cmd: ['/bin/sh', '-c', `#(nop) ${summary}`], Image: this.image };
    if (await this.cached(containerConfig)) return;
    const id = await this.create(containerConfig);
    await this.out(` ---> Running in ${short(id)}\n`);
    await this.commit(id, containerConfig);
  }

  private async runStep(cmd: string[]): Promise<void> {
    this.requireImage('run');
    const containerConfig: ContainerConfig = { ...this.config, Cmd: cmd, Image: this.image };
    if (await this.cached(containerConfig)) return;
    // The process is exactly the command: the image's entrypoint is not applied.
    const id = await this.create({ ...containerConfig, Entrypoint: null, AttachStdout: true, AttachStderr: true });
    await this.out(` ---> Running in ${short(id)}\n`);
    const output = this.attach(id);
    const onAbort = () => void this.unary(this.s.runtime, this.s.runtime.kill, { id, signal: '' }, 10_000).catch(() => undefined);
    this.signal.addEventListener('abort', onAbort);
    try {
      await this.unary(this.s.runtime, this.s.runtime.start, { id, hostConfigJson: '' }, 60_000);
      // Cancelled while the container was being made: it is stopped as soon as it runs.
      if (this.signal.aborted) onAbort();
      const { statusCode } = await this.unary<containers.ContainerRef, containers.WaitResponse>(this.s.runtime, this.s.runtime.wait, { id }, 24 * 3600_000);
      await output.ended;
      if (this.signal.aborted) throw new BuildCancelled();
      if (statusCode !== 0) throw refused(`The command ${goList(cmd)} returned a non-zero code: ${statusCode}`);
    } finally {
      this.signal.removeEventListener('abort', onAbort);
      // A start that failed leaves the attachment open: it goes with the step.
      output.cancel();
    }
    await this.commit(id, containerConfig);
  }

  /** The container's output into the build's, unless quiet; resolves when it ends. */
  private attach(id: string): { ended: Promise<void>; cancel(): void } {
    const call = this.s.runtime.attach(callOptions(this.o.requestId).metadata);
    const ended = new Promise<void>((resolve) => {
      call.write({ part: { $case: 'open', open: { id, logs: false, stream: true, stdin: false, stdout: true, stderr: true } } });
      let pending = Promise.resolve();
      call.on('data', (reply: containers.AttachReply) => {
        if (reply.part?.$case !== 'output' || this.o.quiet) return;
        const { stream, data } = reply.part.output;
        pending = pending.then(() => this.s.output({ kind: stream === 2 ? 'err' : 'out', text: Buffer.from(data).toString('utf8') }));
      });
      const done = () => void pending.then(resolve, resolve);
      call.on('end', done);
      call.on('error', done);
    });
    return { ended, cancel: () => call.cancel() };
  }

  /** ADD and COPY (BUILDER.md §5). */
  private async add(instruction: 'ADD' | 'COPY', args: string): Promise<void> {
    this.requireImage('commit');
    const env = this.config.Env ?? [];
    const space = args.indexOf(' ');
    if (space < 0) throw refused(`Invalid ${instruction} format`);
    const src = replaceEnv(args.slice(0, space).trim(), env);
    const rawDest = replaceEnv(args.slice(space + 1).trim(), env);
    if (!rawDest) throw refused(`Invalid ${instruction} format`);
    // A relative destination is below WORKDIR (what users of today's builders expect).
    const dest = path.posix.resolve(this.config.WorkingDir || '/', rawDest) + (/\/$|^\.$/.test(rawDest) && rawDest !== '/' ? '/' : '');
    const toDir = dest.endsWith('/');
    const context = this.o.context;

    let key: string;
    let target: string;
    const placements: Placement[] = [];
    if (/^https?:\/\//.test(src)) {
      if (instruction === 'COPY') throw refused("Source can't be an URL for COPY");
      const name = new URL(src).pathname.split('/').pop() ?? '';
      if (toDir && !name) throw refused(`cannot determine filename from url: ${src}`);
      const file = path.join(this.o.workDir, `download-${this.containerSeq}-${Date.now()}`);
      const res = await fetch(src).catch((err: Error) => {
        throw refused(`Error downloading ${src}: ${err.message}`);
      });
      if (!res.ok || !res.body) throw refused(`Error downloading ${src}: ${res.status} ${res.statusText}`);
      await pipeline(Readable.fromWeb(res.body as never), fs.createWriteStream(file, { mode: 0o600 }));
      key = `file:${await fileChecksum(file)}`;
      target = toDir ? dest : path.posix.dirname(dest);
      placements.push({ kind: 'download', file, name: toDir ? name : path.posix.basename(dest) });
    } else {
      const sources = context.sources(src);
      if (sources.length > 1 && !toDir) throw refused(`When using ${instruction} with more than one source file, the destination must be a directory and end with a /`);
      const sums: string[] = [];
      target = dest;
      for (const entry of sources) {
        sums.push(`${entry.type === 'directory' ? 'dir' : 'file'}:${context.checksum(entry)}`);
        if (entry.type === 'directory') placements.push({ kind: 'tree', entry });
        else if (instruction === 'ADD' && isArchive(context, entry)) placements.push({ kind: 'archive', entry });
        else if (toDir) placements.push({ kind: 'file', entry, name: path.posix.basename(entry.name) });
        else {
          target = path.posix.dirname(dest);
          placements.push({ kind: 'file', entry, name: path.posix.basename(dest) });
        }
      }
      key = sums.length === 1 ? sums[0] : `multi:${createHash('sha256').update(sums.join(',')).digest('hex')}`;
    }
    try {
      await this.place(instruction, key, rawDest, target, placements);
    } finally {
      // A downloaded file is the step's own, as Docker 1.0's temporary directory was.
      for (const p of placements) if (p.kind === 'download') fs.rmSync(p.file, { force: true });
    }
  }

  /** The commit of an ADD or COPY: from the cache, or a container given the files. */
  private async place(instruction: 'ADD' | 'COPY', key: string, rawDest: string, target: string, placements: Placement[]): Promise<void> {
    const containerConfig: ContainerConfig = { ...this.config, Cmd: ['/bin/sh', '-c', `#(nop) ${instruction} ${key} in ${rawDest}`], Image: this.image };
    if (await this.cached(containerConfig)) return;
    const id = await this.create(containerConfig);
    await new Promise<void>((resolve, reject) => {
      const upload = this.s.runtime.putArchive(callOptions(this.o.requestId).metadata, (err) => (err ? reject(err) : resolve()));
      upload.write({ part: { $case: 'target', target: { id, path: target, makePath: true, legacyCopy: false } } });
      pumpInto(placementTar(this.o.context, placements), upload, (chunk: Buffer): containers.PutArchiveRequest => ({ part: { $case: 'chunk', chunk } }), reject);
    });
    await this.commit(id, containerConfig);
  }

  /** The containers the rules leave (no rm, or a failed step without forcerm) are the user's now: no sweep takes them. */
  private async keepIntermediates(): Promise<void> {
    for (const [, name] of this.intermediates.splice(0)) await this.s.forget(name);
  }

  /** Removes every intermediate container not removed yet (a line each), and forgets its record. */
  async removeIntermediates(): Promise<void> {
    while (this.intermediates.length) {
      const [id, name] = this.intermediates.shift()!;
      try {
        await this.unary(this.s.runtime, this.s.runtime.remove, { id, force: true, volumes: true }, 60_000);
        await this.s.forget(name);
        await this.out(`Removing intermediate container ${short(id)}\n`);
      } catch (err) {
        await this.out(`Error removing intermediate container ${short(id)}: ${asStevedoreError(err).message}\n`);
      }
    }
  }
}
