// A cluster's node, as the runtime's parts see it: its name, and the
// cluster's index of containers its runtime keeps right for its own.
import type { ContainerIndex, ContainerSummary } from '@stevedore/cluster';
import type { ContainerConfig } from '@stevedore/docker-api';
import type { ContainerRow } from './store/container-db';

export interface ClusterPlace {
  node: string;
  index: ContainerIndex;
}

/** What the cluster shows of a container while its node is down. */
export function clusterSummary(row: ContainerRow): ContainerSummary {
  const config = JSON.parse(row.config) as ContainerConfig;
  return { name: row.name, image: row.image_name, imageId: row.image_id, command: [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])], created: row.created };
}
