// Which container runtime a container request goes to. On a single host, the
// one runtime. In a cluster, the runtime of the container's node, found in
// the cluster's index (any edge finds the same: the edge keeps nothing), and
// for a new container the node placement chooses; a request for a container
// on a node that is down is refused at once, naming the node.
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { type Member } from '@stevedore/cluster';
import type { StevedoreConfig } from '@stevedore/config';
import { containers } from '@stevedore/contracts';
import { notFound, refused } from '@stevedore/errors';
import { connectService, type ServiceClient } from '@stevedore/service-kit';
import { CONFIG } from '../nest-context';
import { Backends } from './backends';
import { ClusterView } from './cluster-view';

export type RuntimeClient = ServiceClient<typeof containers.ContainerRuntimeService>;

export interface Routed {
  rt: RuntimeClient;
  /** The reference to give the runtime (without the node's name a cluster's `ps` shows before it). */
  ref: string;
  /** The container's node, in a cluster. */
  node?: Member;
}

@Injectable()
export class ContainerRouter implements OnApplicationShutdown {
  private readonly clients = new Map<string, RuntimeClient>();

  constructor(
    @Inject(CONFIG) private readonly config: StevedoreConfig,
    private readonly backends: Backends,
    readonly cluster: ClusterView,
  ) {}

  /** A node's runtime, one connection per address. */
  client(node: Member): RuntimeClient {
    let c = this.clients.get(node.runtime);
    if (!c) {
      c = connectService(containers.ContainerRuntimeService, { ...this.config, serviceAddress: () => node.runtime }, 'container-runtime');
      this.clients.set(node.runtime, c);
    }
    return c;
  }

  /** The runtime a container's requests go to. */
  async of(ref: string): Promise<Routed> {
    const members = await this.cluster.members();
    if (!members.length) return { rt: this.backends.containers, ref };
    // `node/name`, as a cluster's ps shows it, names the container `name` on that node.
    const [first, ...rest] = ref.replace(/^\//, '').split('/');
    const onNode = rest.length ? members.find((m) => m.name === first) : undefined;
    const bare = onNode ? rest.join('/') : ref;
    const found = await this.cluster.index.locate(bare);
    if (found === undefined || found === 'ambiguous' || (onNode && found.node !== onNode.name)) throw notFound(`No such container: ${ref}`);
    const node = members.find((m) => m.name === found.node);
    if (!node) throw notFound(`No such container: ${ref}`);
    if (!node.up) throw refused(`Container ${bare} running on unhealthy node ${node.name}`);
    return { rt: this.client(node), ref: found.id, node };
  }

  /** Every runtime that answers: the up nodes' in a cluster. */
  async all(): Promise<Array<{ rt: RuntimeClient; node?: Member }>> {
    const members = await this.cluster.members();
    if (!members.length) return [{ rt: this.backends.containers }];
    return members.filter((m) => m.up).map((node) => ({ rt: this.client(node), node }));
  }

  onApplicationShutdown(): void {
    for (const c of this.clients.values()) c.close();
  }
}
