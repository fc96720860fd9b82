// One build, step by step, as Docker 1.0's builder ran it (../shared/api/BUILDER.md):
// what each instruction does to the image being built and its config. The
// builder is given what it works with: the image store (FROM's image, pulls,
// commits), the build's containers (one per RUN and per commit, kept or
// removed by the rm/forcerm rules after each step), the cache, and the
// build's output stream.
import * as path from 'node:path';
import type { OutputEntry } from '@stevedore/builds';
import { containerConfigText, toProgressMessage } from '@stevedore/contracts';
import { jsonMessage, splitRepoTag, type ContainerConfig } from '@stevedore/docker-api';
import { asStevedoreError, refused, StevedoreError } from '@stevedore/errors';
import { addSources, discardDownloads, sourcesTar } from './add-sources';
import type { BuildImageStore } from './build-backends';
import type { BuildCache } from './build-cache';
import { shortId as short, type BuildContainers } from './build-containers';
import type { BuildContext } from './context';
import { commandOf, goList, jsonArray, parseDockerfile, replaceEnv, type Step } from './dockerfile';

const DEFAULT_ENV = ['HOME=/', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
const FORBIDDEN_TRIGGERS = ['ONBUILD', 'FROM', 'MAINTAINER'];

export interface BuildOptions {
  buildId: string;
  context: BuildContext;
  /** The build's own directory (downloads of ADD go there). */
  workDir: string;
  quiet: boolean;
  rm: boolean;
  forcerm: boolean;
  tag: string;
  /** The reference of this build's registry credentials in the image store ('' for none). */
  heldCredentials: string;
}

/** What a build works with. */
export interface BuildParts {
  store: BuildImageStore;
  containers: BuildContainers;
  cache: BuildCache;
  /** Appends a line to the build's output. */
  output(entry: OutputEntry): Promise<void>;
  /** Told how long each step took (the worker's metrics). */
  stepTook?(instruction: string, seconds: number): void;
}

/** A RUN whose command failed: its exit status goes to the client (`errorDetail.code`, today's CLI exits with it). */
export class StepFailed extends StevedoreError {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super('refused', message);
  }
}

export class BuildCancelled extends StevedoreError {
  constructor() {
    super('refused', 'The build was cancelled: its client went away');
  }
}

export class Builder {
  private image = '';
  private config: ContainerConfig = {};
  private maintainer = '';

  constructor(
    private readonly o: BuildOptions,
    private readonly parts: BuildParts,
    private readonly signal: AbortSignal,
  ) {}

  private out(text: string) {
    return this.parts.output({ kind: 'out', text });
  }

  /** Runs the build; resolves with the image's ID. Intermediate containers are handled by the rules whatever happens. */
  async run(): Promise<string> {
    const text = this.o.context.dockerfile();
    if (text === undefined) throw refused("Can't build a directory with no Dockerfile");
    // Docker 1.0: only a file of no bytes is "empty"; blank lines make a build that generates nothing.
    if (text.length === 0) throw refused('Dockerfile cannot be empty');
    const steps = parseDockerfile(text);
    const { containers } = this.parts;
    try {
      for (const [n, step] of steps.entries()) await this.step(String(n), step);
      if (!this.image) throw refused('No image was generated. This may be because the Dockerfile does not, like, do anything.');
    } catch (err) {
      // A cancelled build leaves nothing, whatever rm and forcerm say.
      if (this.o.forcerm || err instanceof BuildCancelled || this.signal.aborted) await containers.removeAll();
      await containers.keepAll();
      throw this.signal.aborted ? new BuildCancelled() : err;
    }
    await containers.keepAll();
    await this.out(`Successfully built ${short(this.image)}\n`);
    if (this.o.tag) {
      const { repo, tag = '' } = splitRepoTag(this.o.tag);
      // Docker 1.0 ignored a failing tag operation.
      await this.parts.store.tag(this.image, repo, tag).catch(() => undefined);
    }
    return this.image;
  }

  private async step(n: string, step: Step): Promise<void> {
    if (this.signal.aborted) throw new BuildCancelled();
    const started = process.hrtime.bigint();
    await this.out(`Step ${n} : ${step.line}\n`);
    try {
      const shown = await this.dispatch(step);
      if (shown) await this.out(` ---> ${short(this.image)}\n`);
    } finally {
      await this.parts.cache.stepEnded();
    }
    if (this.o.rm) await this.parts.containers.removeAll();
    this.parts.stepTook?.(step.instruction, Number(process.hrtime.bigint() - started) / 1e9);
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
        await this.parts.output({ kind: 'err', text: `# Skipping unknown instruction ${instruction}\n` });
        return false;
    }
  }

  private async from(name: string): Promise<void> {
    const { store } = this.parts;
    let found = await store.base(name).catch((err) => {
      if (asStevedoreError(err).kind !== 'notFound') throw err;
      return undefined;
    });
    if (!found) {
      await this.pull(name);
      found = await store.base(name);
    }
    this.image = found.id;
    this.parts.cache.based(found.chain);
    this.config = { ...found.config };
    if (!this.config.Env?.length) this.config.Env = [...DEFAULT_ENV];
    const triggers = this.config.OnBuild ?? [];
    if (!triggers.length) return;
    await this.parts.output({ kind: 'err', text: `# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n` });
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
    for await (const p of this.parts.store.pull(repo, tag || 'latest', this.o.heldCredentials)) {
      if (p.error) throw refused(p.error);
      await this.parts.output({ kind: 'raw', text: jsonMessage(toProgressMessage(p)).trimEnd() });
    }
  }

  private requireImage(what: 'run' | 'commit'): void {
    if (!this.image) throw refused(`Please provide a source image with \`from\` prior to ${what}`);
  }

  /** A cache hit makes its image the current one. */
  private async cached(containerConfig: ContainerConfig): Promise<boolean> {
    const id = await this.parts.cache.find(this.image, containerConfig);
    if (!id) return false;
    await this.out(' ---> Using cache\n');
    this.image = id;
    return true;
  }

  private async commit(containerId: string, containerConfig: ContainerConfig): Promise<void> {
    this.image = await this.parts.store.commit({
      containerId,
      containerConfigJson: containerConfigText.encode(containerConfig),
      parent: this.image,
      repo: '',
      tag: '',
      comment: '',
      author: this.maintainer,
      configJson: containerConfigText.encode({ ...this.config, Image: this.image }),
      exactConfig: true,
    });
    await this.parts.cache.committed();
  }

  /** MAINTAINER, CMD, ENV, …: a commit of a container that never runs, its command a `#(nop)` summary. */
  private async commitMeta(summary: string): Promise<void> {
    this.requireImage('commit');
    const containerConfig: ContainerConfig = { ...this.config, Cmd: ['/bin/sh', '-c', `#(nop) ${summary}`], Image: this.image };
    if (await this.cached(containerConfig)) return;
    const id = await this.parts.containers.create(containerConfig);
    await this.out(` ---> Running in ${short(id)}\n`);
    await this.commit(id, containerConfig);
  }

  private async runStep(cmd: string[]): Promise<void> {
    this.requireImage('run');
    const containerConfig: ContainerConfig = { ...this.config, Cmd: cmd, Image: this.image };
    if (await this.cached(containerConfig)) return;
    const { containers } = this.parts;
    // The process is exactly the command: the image's entrypoint is not applied.
    const id = await containers.create({ ...containerConfig, Entrypoint: null, AttachStdout: true, AttachStderr: true });
    await this.out(` ---> Running in ${short(id)}\n`);
    const status = await containers.run(id, this.signal, async ({ stream, data }) => {
      if (!this.o.quiet) await this.parts.output({ kind: stream, text: data.toString('utf8') });
    });
    if (this.signal.aborted) throw new BuildCancelled();
    if (status !== 0) throw new StepFailed(`The command ${goList(cmd)} returned a non-zero code: ${status}`, status);
    await this.commit(id, containerConfig);
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
    const { key, target, placements } = await addSources(instruction, src, dest, this.o.context, this.o.workDir);
    try {
      const containerConfig: ContainerConfig = { ...this.config, Cmd: ['/bin/sh', '-c', `#(nop) ${instruction} ${key} in ${rawDest}`], Image: this.image };
      if (await this.cached(containerConfig)) return;
      const id = await this.parts.containers.create(containerConfig);
      await this.parts.containers.put(id, target, sourcesTar(this.o.context, placements));
      await this.commit(id, containerConfig);
    } finally {
      discardDownloads(placements);
    }
  }
}
