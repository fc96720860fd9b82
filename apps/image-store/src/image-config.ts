// Docker 1.0's one-layer-per-image model next to today's image config: the
// config written for save and push, and the chain of images made from a
// config's layers on load and pull. Both directions are here so that they
// agree: loading what was pulled, or pulling what was loaded, names every
// image the same.
import { createHash } from 'node:crypto';
import { STEVEDORE_VERSION } from '@stevedore/config';
import type { ContainerConfig, StoredImage } from '@stevedore/docker-api';
import { EMPTY_CONFIG } from './images.service';

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Today's image config (what a registry and `docker load` read). */
export interface ImageConfigJson {
  architecture?: string;
  os?: string;
  config?: ContainerConfig | null;
  container?: string;
  container_config?: ContainerConfig;
  created?: string;
  docker_version?: string;
  author?: string;
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
  rootfs?: { type: string; diff_ids: string[] };
}

/** The config of an image whose chain (base first) has these metadata and layer digests. */
export function imageConfig(chain: StoredImage[], diffIds: string[]): ImageConfigJson {
  const top = chain[chain.length - 1];
  return {
    architecture: top.architecture ?? 'amd64',
    os: top.os ?? 'linux',
    config: top.config ?? {},
    container: top.container ?? '',
    container_config: top.container_config ?? EMPTY_CONFIG,
    created: top.created,
    docker_version: top.docker_version ?? STEVEDORE_VERSION,
    author: top.author ?? '',
    history: chain.map((m) => ({ created: m.created, created_by: (m.container_config?.Cmd ?? []).join(' '), comment: m.comment ?? '' })),
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
}

/**
 * The image IDs of a config's layers, base first: the top one is the
 * config's digest (as today's engines name an image); each one below is
 * derived from its parent and its layer's digest.
 */
export function chainIds(configBytes: Buffer, diffIds: string[]): string[] {
  const ids: string[] = [];
  diffIds.forEach((diffId, i) => {
    ids.push(i === diffIds.length - 1 ? sha256(configBytes) : sha256(`${ids[i - 1] ?? ''} ${diffId}`));
  });
  return ids;
}

/** The metadata of the image made from layer `index` of a config. */
export function layerImageMeta(config: ImageConfigJson, index: number, count: number, id: string, parent: string | null, size: number): StoredImage {
  const history = (config.history ?? []).filter((h) => !h.empty_layer);
  const h = history[index] ?? {};
  const top = index === count - 1;
  const created = (top ? config.created : h.created) ?? config.created ?? new Date().toISOString();
  const cmd = h.created_by ? ['/bin/sh', '-c', h.created_by] : null;
  const meta: StoredImage = {
    id,
    ...(parent ? { parent } : {}),
    ...(h.comment ? { comment: h.comment } : {}),
    created,
    container_config: top && config.container_config ? config.container_config : { ...EMPTY_CONFIG, Cmd: cmd },
    docker_version: config.docker_version ?? STEVEDORE_VERSION,
    ...(top && config.author ? { author: config.author } : {}),
    ...(top && config.config ? { config: config.config } : {}),
    architecture: config.architecture ?? 'amd64',
    os: config.os ?? 'linux',
    Size: size,
  };
  return meta;
}
