// Image references as clients send them: repository[:tag], an ID or a prefix.
import { randomBytes } from 'node:crypto';
import { StevedoreError } from '@stevedore/errors';
import { DEFAULT_TAG, splitRepoTag } from '@stevedore/docker-api';

export { DEFAULT_TAG };

/** Today's docker CLI sends Docker Hub names in full: strip that back to the name the user typed. */
export function normalizeRepository(repo: string): string {
  return repo.replace(/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)\/(library\/)?/, '');
}

/** Splits repo[:tag] (see splitRepoTag), the repository as the user typed it. */
export function splitReference(ref: string): { repo: string; tag: string | undefined } {
  const { repo, tag } = splitRepoTag(ref);
  return { repo: normalizeRepository(repo), tag };
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const REGISTRY_HOST = /^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d+)?$/;

/**
 * The registry a repository name lives in, by Docker's rule: its first
 * component when another follows and it holds a '.' or ':' or is
 * `localhost`; undefined for a Docker Hub name.
 */
export function registryHost(repo: string): string | undefined {
  const slash = repo.indexOf('/');
  if (slash < 0) return undefined;
  const first = repo.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/** A repository name: optional registry host, then lower-case path components. Docker 1.0 answered 500. */
export function validateRepository(repo: string): void {
  if (repo === '') throw new StevedoreError('refused', "Repository name can't be empty");
  const host = registryHost(repo);
  if (host !== undefined && !REGISTRY_HOST.test(host)) throw new StevedoreError('refused', `Invalid registry name (${host})`);
  const path = (host === undefined ? repo : repo.slice(host.length + 1)).split('/');
  if (path.some((p) => !COMPONENT.test(p)) || repo.length > 255) {
    throw new StevedoreError('refused', `Invalid repository name (${repo}), only [a-z0-9-_.] are allowed`);
  }
}

/** Docker 1.0 refused only a tag with `/` or `:` (500 `Illegal tag name: <t>`); control characters are refused too, they would break every listing. */
function validateTag(tag: string): void {
  if (tag === '') throw new StevedoreError('refused', "Tag name can't be empty");
  if (/[/:\x00-\x1f\x7f]/.test(tag)) throw new StevedoreError('refused', `Illegal tag name: ${tag}`);
}

/**
 * A repository and tag to tag with, checked and normalized (the tag
 * defaults to latest). Today's CLI sends `repo=name:tag` and no tag (v1.14
 * semantics): the tag is then taken from the name.
 */
export function tagTarget(repoIn: string, tagIn: string): { repo: string; tag: string } {
  let repo = normalizeRepository(repoIn);
  let tag = tagIn;
  if (!tag) {
    const split = splitReference(repoIn);
    repo = split.repo;
    tag = split.tag ?? DEFAULT_TAG;
  }
  validateRepository(repo);
  validateTag(tag);
  return { repo, tag };
}

/** A new image ID: 64 hex characters whose first 12 are not all digits (Docker's rule). */
export function newImageId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!/^\d{12}/.test(id)) return id;
  }
}

export function isIdPrefix(s: string): boolean {
  return /^[0-9a-f]{1,64}$/.test(s);
}
