// A build's registry credentials (X-Registry-Config), held in this
// process's memory for the build's life and handed to its pulls by
// reference: the build's job, its queue and its output go through Redis,
// which keeps an append-only file on disk, so the credentials may not.
import type { images } from '@stevedore/contracts';
import { registryHost } from '../store/names';

/** A build that never released its credentials (its edge died) loses them after this long. */
const MAX_HOLD_MS = 24 * 3600 * 1000;
const MAX_HELD = 10_000;

export class HeldCredentials {
  private readonly held = new Map<string, { configs: Record<string, images.AuthConfig>; until: number }>();

  hold(ref: string, configs: Record<string, images.AuthConfig>, now = Date.now()): void {
    this.expire(now);
    if (this.held.size >= MAX_HELD && !this.held.has(ref)) throw new Error('Too many builds hold registry credentials');
    this.held.set(ref, { configs, until: now + MAX_HOLD_MS });
  }

  release(ref: string): void {
    this.held.delete(ref);
  }

  /**
   * The entry for the registry of `repo` (a repository with its registry host,
   * as a pull names it), else the entry with no registry (`''`), as the
   * builder chose before; undefined when there is none.
   */
  forRepository(ref: string, repo: string, now = Date.now()): images.AuthConfig | undefined {
    this.expire(now);
    const configs = this.held.get(ref)?.configs;
    if (!configs) return undefined;
    const host = registryHost(repo) ?? 'index.docker.io';
    const key = Object.keys(configs).find((k) => k === host || k.replace(/^https?:\/\//, '').split('/')[0] === host) ?? (configs[''] ? '' : undefined);
    return key === undefined ? undefined : configs[key];
  }

  private expire(now: number): void {
    for (const [ref, h] of this.held) if (h.until <= now) this.held.delete(ref);
  }
}
