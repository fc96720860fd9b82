// A cluster's node, as the runtime's parts see it: its name, and the
// cluster's index of containers its runtime keeps right for its own.
import type { ContainerIndex } from '@stevedore/cluster';

export interface ClusterPlace {
  node: string;
  index: ContainerIndex;
}
