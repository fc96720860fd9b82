// Image references as clients write them: [registry-host[:port]/]path[:tag].

/** The tag a reference without one means. */
export const DEFAULT_TAG = 'latest';

/** Splits `repo[:tag]` at the last ':' after the last '/': a registry port is not a tag (Docker 1.0 split at every ':'). */
export function splitRepoTag(ref: string): { repo: string; tag: string | undefined } {
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { repo: ref, tag: undefined };
}
