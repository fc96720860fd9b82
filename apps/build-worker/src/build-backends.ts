// What a build asks of the container runtime and of the image store, in the
// builder's own terms, and the gRPC clients behind them. The builder is
// given these interfaces, so that a test can give it fakes; each gRPC
// implementation is bound to one build's request ID, which every call carries
// into the services' logs.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { containerConfigText, imageMetadataText, type containers, type images } from '@stevedore/contracts';
import type { ContainerConfig } from '@stevedore/docker-api';
import { commitContainer, type ServiceClient } from '@stevedore/service-kit';

export type RuntimeClient = ServiceClient<typeof containers.ContainerRuntimeService>;
export type StoreClient = ServiceClient<typeof images.ImageStoreService>;

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

export function grpcBuildRuntime(runtime: RuntimeClient, requestId: string): BuildRuntime {
  const call = (timeoutMs: number) => ({ requestId, timeoutMs });
  return {
    async create(name, config) {
      const r = await runtime.create({ name, configJson: containerConfigText.encode(config), hostConfigJson: '' }, call(30_000));
      return { id: r.id, warnings: r.warnings };
    },
    async start(id) {
      await runtime.start({ id, hostConfigJson: '' }, call(60_000));
    },
    async wait(id) {
      const { statusCode } = await runtime.wait({ id }, call(24 * 3600_000));
      return statusCode;
    },
    async kill(id) {
      await runtime.kill({ id, signal: '' }, call(10_000));
    },
    attach(id, onOutput) {
      const attachment = runtime.attach({ requestId });
      const ended = new Promise<void>((resolve) => {
        attachment.write({ part: { $case: 'open', open: { id, logs: false, stream: true, stdin: false, stdout: true, stderr: true } } });
        let pending = Promise.resolve();
        attachment.on('data', (reply: containers.AttachReply) => {
          if (reply.part?.$case !== 'output') return;
          const { stream, data } = reply.part.output;
          pending = pending.then(() => onOutput({ stream: stream === 2 ? 'err' : 'out', data: Buffer.from(data) }));
        });
        const done = () => void pending.then(resolve, resolve);
        attachment.on('end', done);
        attachment.on('error', done);
      });
      return { ended, cancel: () => attachment.cancel() };
    },
    async putArchive(id, target, archive) {
      const upload = runtime.putArchive({ requestId });
      upload.stream.write({ part: { $case: 'target', target: { id, path: target, makePath: true, legacyCopy: false } } });
      const messages = async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<containers.PutArchiveRequest> {
        for await (const chunk of chunks) yield { part: { $case: 'chunk', chunk } };
      };
      // The archive's own failure (a context file that cannot be read or unpacked) is the step's.
      const sent = pipeline(archive, messages, upload.stream).catch((err: unknown) => {
        upload.stream.cancel();
        throw err;
      });
      await Promise.all([sent, upload.response]);
    },
    async remove(id) {
      await runtime.remove({ id, force: true, volumes: true }, call(60_000));
    },
  };
}

/** The image store of a build; commits read the container's changes from `runtime`. */
export function grpcBuildImageStore(store: StoreClient, runtime: RuntimeClient, requestId: string): BuildImageStore {
  const call = (timeoutMs: number) => ({ requestId, timeoutMs });
  return {
    async base(name) {
      const found = await store.buildBase({ name }, call(10_000));
      const meta = imageMetadataText.decode(found.image!.metadataJson)!;
      return { id: found.image!.id, config: meta.config ?? {}, chain: found.chain };
    },
    pull(repo, tag, heldCredentials) {
      return store.pull({ image: repo, tag, auth: undefined, heldCredentials, oneAtATime: false }, { requestId });
    },
    findCached(parent, containerConfig) {
      return store.findCached({ parent, containerConfigJson: containerConfigText.encode(containerConfig) }, call(10_000));
    },
    commit(header) {
      return commitContainer(runtime, store, header, requestId);
    },
    async tag(image, repo, tag) {
      await store.tag({ name: image, repo, tag, force: true }, call(600_000));
    },
  };
}
