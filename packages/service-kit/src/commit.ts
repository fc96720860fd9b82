// Committing a container: its writable layer streams from the container
// runtime into the image store, which makes it an image on top of the
// container's own. Used by POST /commit (the API edge) and by every step of
// a build (the build workers).
import { containers, images } from '@stevedore/contracts';
import { pipeline } from 'node:stream/promises';
import { callOptions } from './clients';
import type { ServiceClient } from './typed-grpc';

export type CommitFailure = { err: unknown; service: 'image-store' | 'container-runtime' };

/** Commits the container the header names; resolves with the new image's ID, rejects with the failing side named. */
export function commitContainer(runtime: containers.ContainerRuntimeClient, store: images.ImageStoreClient, header: images.CommitHeader, requestId: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const { metadata, options } = callOptions(requestId);
    const upload = store.commit(metadata, options, (err, r) => (err ? reject({ err, service: 'image-store' } satisfies CommitFailure) : resolve(r.id)));
    upload.write({ part: { $case: 'header', header } });
    const diff = runtime.diff({ id: header.containerId }, callOptions(requestId).metadata);
    pumpInto(diff, upload, (c: { data: Buffer }): images.CommitRequest => ({ part: { $case: 'chunk', chunk: c.data } }), (err) => reject({ err, service: 'container-runtime' } satisfies CommitFailure));
  });
}

interface Source<C> {
  on(event: 'data', listener: (chunk: C) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

interface Upload<T> {
  write(message: T): boolean;
  once(event: 'drain', listener: () => void): unknown;
  end(): void;
  cancel(): void;
}

/**
 * Feeds a stream into a client-streaming call, one message per chunk, paced
 * by the call's flow control; ends the call with the stream, cancels it when
 * the stream fails (and tells `onError`).
 */
export function pumpInto<C, T>(source: Source<C>, upload: Upload<T>, wrap: (chunk: C) => T, onError: (err: Error) => void): void {
  source.on('data', (chunk) => {
    if (!upload.write(wrap(chunk))) {
      source.pause();
      upload.once('drain', () => source.resume());
    }
  });
  source.on('end', () => upload.end());
  source.on('error', (err) => {
    upload.cancel();
    onError(err);
  });
}

type RuntimeClient = ServiceClient<typeof containers.ContainerRuntimeService>;
type StoreClient = ServiceClient<typeof images.ImageStoreService>;

/**
 * Commits the container the header names: its diff streams from the
 * runtime into the store (stream.pipeline paces one by the other); resolves
 * with the new image's ID, rejects with the failing side named.
 */
export async function commitContainerTyped(runtime: RuntimeClient, store: StoreClient, header: images.CommitHeader, requestId: string): Promise<string> {
  const upload = store.commit({ requestId });
  upload.stream.write({ part: { $case: 'header', header } });
  const diff = runtime.diff({ id: header.containerId }, { requestId });
  const messages = async function* (chunks: AsyncIterable<containers.Chunk>): AsyncGenerator<images.CommitRequest> {
    for await (const c of chunks) yield { part: { $case: 'chunk', chunk: c.data } };
  };
  const sent = pipeline(diff, messages, upload.stream).catch((err: unknown) => {
    upload.stream.cancel();
    throw { err, service: 'container-runtime' } satisfies CommitFailure;
  });
  const [, committed] = await Promise.all([
    sent,
    upload.response.catch((err: unknown) => {
      diff.cancel();
      throw { err, service: 'image-store' } satisfies CommitFailure;
    }),
  ]);
  return committed.id;
}
