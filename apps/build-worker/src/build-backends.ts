// What a build asks of the container runtime and of the image store, in the
// builder's own terms, and the gRPC clients behind them. The builder is
// given these interfaces, so that a test can give it fakes; each gRPC
// implementation is bound to one build's request ID, which every call carries
// into the services' logs.
import type { Readable } from 'node:stream';
import type { containers, images } from '@stevedore/contracts';
import type { ContainerConfig, StoredImage } from '@stevedore/docker-api';
import { callOptions, callUnary, commitContainer, pumpInto, type CommitFailure } from '@stevedore/service-kit';

/** One write of a running container: its stream (stdout or stderr) and bytes. */
export type ContainerOutput = { stream: 'out' | 'err'; data: Buffer };

/** An open attachment to a container's output. */
export interface Attachment {
  /** Resolves when the output has ended and every write was handed on. */
  ended: Promise<void>;
  /** Closes the attachment (once the step is over, or when a start failed). */
  cancel(): void;
}

export interface BuildRuntime {
  /** Creates a container of that name; its ID, and the warnings to show. */
  create(name: string, config: ContainerConfig): Promise<{ id: string; warnings: string[] }>;
  start(id: string): Promise<void>;
  /** Resolves with the exit status once the container has stopped. */
  wait(id: string): Promise<number>;
  kill(id: string): Promise<void>;
  /** Streams what the container writes from now on to `onOutput`, one write after another. */
  attach(id: string, onOutput: (output: ContainerOutput) => Promise<void>): Attachment;
  /** Extracts a tar stream into the container below `target`, made when missing. */
  putArchive(id: string, target: string, archive: Readable): Promise<void>;
  /** Removes the container whatever its state, its volumes with it. */
  remove(id: string): Promise<void>;
}

/** FROM's image as the builder needs it. */
export interface BaseImage {
  id: string;
  config: ContainerConfig;
  /** The cache chain below it (see BuildCache). */
  chain: images.CachedLink[];
}

export interface BuildImageStore {
  /** FROM's image; rejects with a notFound error when it is not here. */
  base(name: string): Promise<BaseImage>;
  /** Pulls one tag, with the credentials held for the build (a reference, '' for none); its progress as it comes. */
  pull(repo: string, tag: string, heldCredentials: string): AsyncIterable<images.Progress>;
  /** The image made before from `containerConfig` on top of `parent` ('' for none), and the chain below it. */
  findCached(parent: string, containerConfig: ContainerConfig): Promise<images.FindCachedResponse>;
  /** Commits a container (its changes read from the runtime); resolves with the new image's ID. */
  commit(header: images.CommitHeader): Promise<string>;
  tag(image: string, repo: string, tag: string): Promise<void>;
}

/** One unary call of a generated client, with the build's request ID and a deadline. */
function unary<Req, Res>(client: object, method: unknown, request: Req, requestId: string, timeoutMs: number): Promise<Res> {
  return callUnary(client as never, method as never, request, requestId, timeoutMs);
}

export function grpcBuildRuntime(runtime: containers.ContainerRuntimeClient, requestId: string): BuildRuntime {
  return {
    async create(name, config) {
      const r = await unary<containers.CreateRequest, containers.CreateResponse>(runtime, runtime.create, { name, configJson: JSON.stringify(config), hostConfigJson: '' }, requestId, 30_000);
      return { id: r.id, warnings: r.warnings };
    },
    async start(id) {
      await unary(runtime, runtime.start, { id, hostConfigJson: '' }, requestId, 60_000);
    },
    async wait(id) {
      const { statusCode } = await unary<containers.ContainerRef, containers.WaitResponse>(runtime, runtime.wait, { id }, requestId, 24 * 3600_000);
      return statusCode;
    },
    async kill(id) {
      await unary(runtime, runtime.kill, { id, signal: '' }, requestId, 10_000);
    },
    attach(id, onOutput) {
      const call = runtime.attach(callOptions(requestId).metadata);
      const ended = new Promise<void>((resolve) => {
        call.write({ part: { $case: 'open', open: { id, logs: false, stream: true, stdin: false, stdout: true, stderr: true } } });
        let pending = Promise.resolve();
        call.on('data', (reply: containers.AttachReply) => {
          if (reply.part?.$case !== 'output') return;
          const { stream, data } = reply.part.output;
          pending = pending.then(() => onOutput({ stream: stream === 2 ? 'err' : 'out', data: Buffer.from(data) }));
        });
        const done = () => void pending.then(resolve, resolve);
        call.on('end', done);
        call.on('error', done);
      });
      return { ended, cancel: () => call.cancel() };
    },
    putArchive(id, target, archive) {
      return new Promise<void>((resolve, reject) => {
        const upload = runtime.putArchive(callOptions(requestId).metadata, (err) => (err ? reject(err) : resolve()));
        upload.write({ part: { $case: 'target', target: { id, path: target, makePath: true, legacyCopy: false } } });
        pumpInto(archive, upload, (chunk: Buffer): containers.PutArchiveRequest => ({ part: { $case: 'chunk', chunk } }), reject);
      });
    },
    async remove(id) {
      await unary(runtime, runtime.remove, { id, force: true, volumes: true }, requestId, 60_000);
    },
  };
}

/** The image store of a build; commits read the container's changes from `runtime`. */
export function grpcBuildImageStore(store: images.ImageStoreClient, runtime: containers.ContainerRuntimeClient, requestId: string): BuildImageStore {
  return {
    async base(name) {
      const found = await unary<images.BuildBaseRequest, images.BuildBaseResponse>(store, store.buildBase, { name }, requestId, 10_000);
      const meta = JSON.parse(found.image!.metadataJson) as StoredImage;
      return { id: found.image!.id, config: meta.config ?? {}, chain: found.chain };
    },
    pull(repo, tag, heldCredentials) {
      const call = store.pull({ image: repo, tag, auth: undefined, heldCredentials, oneAtATime: false }, callOptions(requestId).metadata);
      return call as AsyncIterable<images.Progress>;
    },
    findCached(parent, containerConfig) {
      return unary<images.FindCachedRequest, images.FindCachedResponse>(store, store.findCached, { parent, containerConfigJson: JSON.stringify(containerConfig) }, requestId, 10_000);
    },
    commit(header) {
      return commitContainer(runtime, store, header, requestId).catch((f: CommitFailure) => {
        throw f.err;
      });
    },
    async tag(image, repo, tag) {
      await unary(store, store.tag, { name: image, repo, tag, force: true }, requestId, 600_000);
    },
  };
}
