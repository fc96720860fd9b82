// Committing a container: its writable layer streams from the container
// runtime into the image store, which makes it an image on top of the
// container's own. Used by POST /commit (the API edge) and by every step of
// a build (the build workers).
import { pipeline } from 'node:stream/promises';
import type { containers, images } from '@stevedore/contracts';
import { backendError, type ServiceClient } from './typed-grpc';

type RuntimeClient = ServiceClient<typeof containers.ContainerRuntimeService>;
type StoreClient = ServiceClient<typeof images.ImageStoreService>;

/**
 * Commits the container the header names: its diff streams from the
 * runtime into the store (stream.pipeline paces one by the other). Resolves
 * with the new image's ID; a failure names the service that failed when it
 * could not be reached.
 */
export async function commitContainer(runtime: RuntimeClient, store: StoreClient, header: images.CommitHeader, requestId: string): Promise<string> {
  const upload = store.commit({ requestId });
  upload.stream.write({ part: { $case: 'header', header } });
  const diff = runtime.diff({ id: header.containerId }, { requestId });
  const messages = async function* (chunks: AsyncIterable<containers.Chunk>): AsyncGenerator<images.CommitRequest> {
    for await (const c of chunks) yield { part: { $case: 'chunk', chunk: c.data } };
  };
  const sent = pipeline(diff, messages, upload.stream).catch((err: unknown) => {
    upload.stream.cancel();
    throw backendError(err, 'container-runtime');
  });
  const committed = upload.response.catch((err: unknown) => {
    diff.cancel();
    throw err;
  });
  const [, { id }] = await Promise.all([sent, committed]);
  return id;
}
