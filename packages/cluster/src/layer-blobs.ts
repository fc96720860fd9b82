// How a cluster's nodes ask the image store for a layer: the registry
// protocol's blob request, under one repository name.
const LAYER_REPOSITORY = 'stevedore/layers';

/** The path of a layer's blob (`sha256:<hex>`). */
export function layerBlobPath(digest: string): string {
  return `/v2/${LAYER_REPOSITORY}/blobs/${digest}`;
}

/** The digest a request path names, if it is a layer blob's. */
export function layerBlobDigest(urlPath: string): string | undefined {
  const m = /^\/v2\/stevedore\/layers\/blobs\/(sha256:[0-9a-f]{64})$/.exec(urlPath);
  return m?.[1];
}
