// Committing a container: its writable layer streams from the container
// runtime into the image store, which makes it an image on top of the
// container's own. Used by POST /commit (the API edge) and by every step of
// a build (the build workers).
import { containers, images } from '@stevedore/contracts';
import { callOptions } from './clients';

export type CommitFailure = { err: unknown; service: 'image-store' | 'container-runtime' };

/** Commits the container the header names; resolves with the new image's ID, rejects with the failing side named. */
export function commitContainer(runtime: containers.ContainerRuntimeClient, store: images.ImageStoreClient, header: images.CommitHeader, requestId: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const { metadata, options } = callOptions(requestId);
    const upload = store.commit(metadata, options, (err, r) => (err ? reject({ err, service: 'image-store' } satisfies CommitFailure) : resolve(r.id)));
    upload.write({ part: { $case: 'header', header } });
    const diff = runtime.diff({ id: header.containerId }, callOptions(requestId).metadata);
    diff.on('data', (c: { data: Buffer }) => {
      if (!upload.write({ part: { $case: 'chunk', chunk: c.data } })) {
        diff.pause();
        upload.once('drain', () => diff.resume());
      }
    });
    diff.on('end', () => upload.end());
    diff.on('error', (err) => {
      upload.cancel();
      reject({ err, service: 'container-runtime' } satisfies CommitFailure);
    });
  });
}
