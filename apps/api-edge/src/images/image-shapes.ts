// The image answers per API version, each shaper named for the version it
// serves (VERSIONS.md G12, G14, ENDPOINTS.md #21 #25 #26 #29).
import { imageMetadataText } from '@stevedore/contracts';
import type { images } from '@stevedore/contracts';
import { sortedDeep, splitRepoTag, type HistoryEntryJson, type ImageInspect, type ImageListEntry, type ImageListEntryV1_0, type StoredImage } from '@stevedore/docker-api';

const NONE = '<none>:<none>';

/** v1.7 and later: one entry per image. */
export function toImageListV1_7(i: images.ImageSummary): ImageListEntry {
  return { Created: i.created, Id: i.id, ParentId: i.parentId, RepoTags: i.repoTags.length ? i.repoTags : [NONE], Size: i.size, VirtualSize: i.virtualSize };
}

/** Before v1.7: one entry per repository:tag. */
export function toImageListV1_0(i: images.ImageSummary): ImageListEntryV1_0[] {
  const tags = i.repoTags.length ? i.repoTags : [NONE];
  return tags.map((t) => {
    const { repo, tag } = splitRepoTag(t);
    return { Created: i.created, Id: i.id, Repository: repo, Size: i.size, Tag: tag ?? '', VirtualSize: i.virtualSize };
  });
}

/** v1.12: every key, CamelCase, sorted at every depth (Config and ContainerConfig too). */
export function toImageInspectV1_12(r: images.InspectImageResponse): ImageInspect {
  const m = imageMetadataText.decode(r.metadataJson)!;
  return sortedDeep({
    Architecture: m.architecture ?? '',
    Author: m.author ?? '',
    Comment: m.comment ?? '',
    Config: m.config ?? null,
    Container: m.container ?? '',
    ContainerConfig: m.container_config ?? {},
    Created: m.created,
    DockerVersion: m.docker_version ?? '',
    Id: r.id,
    Os: m.os ?? '',
    Parent: m.parent ?? '',
    Size: r.size,
    VirtualSize: r.virtualSize,
  });
}

/** Before v1.12: the metadata as stored, lower_snake keys (and `Size`), empty ones left out. */
export function toImageInspectV1_0(r: images.InspectImageResponse): StoredImage {
  const m = imageMetadataText.decode(r.metadataJson)!;
  const out: Record<string, unknown> = {};
  for (const key of ['id', 'parent', 'comment', 'created', 'container', 'container_config', 'docker_version', 'author', 'config', 'architecture', 'os'] as const) {
    const v = m[key];
    if (v !== undefined && v !== '' && v !== null) out[key] = v;
  }
  out.Size = r.size;
  return out as unknown as StoredImage;
}

export function toHistoryEntry(e: images.HistoryEntry): HistoryEntryJson {
  return { Comment: e.comment, Created: e.created, CreatedBy: e.createdBy, Id: e.id, Size: e.size, Tags: e.tags.length ? e.tags : null } as HistoryEntryJson;
}

export function toDeleteItem(i: images.DeleteImageItem): { Untagged: string } | { Deleted: string } {
  return i.item?.$case === 'untagged' ? { Untagged: i.item.untagged } : { Deleted: i.item?.$case === 'deleted' ? i.item.deleted : '' };
}

/** GET /images/viz (v1.0 - v1.6): Graphviz, 12-character IDs on both edges and labels. */
export function toImageViz(list: images.ImageSummary[]): string {
  const lines = ['digraph docker {'];
  for (const i of list) {
    if (i.parentId) lines.push(` "${i.parentId.slice(0, 12)}" -> "${i.id.slice(0, 12)}"`);
    else lines.push(` base -> "${i.id.slice(0, 12)}" [style=invis]`);
  }
  for (const i of list) {
    if (i.repoTags.length) {
      lines.push(` "${i.id.slice(0, 12)}" [label="${i.id.slice(0, 12)}\\n${i.repoTags.join('\\n')}",shape=box,fillcolor="paleturquoise",style="filled,rounded"];`);
    }
  }
  lines.push(' base [style=invisible]', '}');
  return `${lines.join('\n')}\n`;
}
