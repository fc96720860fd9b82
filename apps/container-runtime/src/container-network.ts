// A container's network at its start and end: the mode it asked for (the
// bridge, none, the host's, or another container's namespace), its links,
// its published ports, and its place on the bridge, recorded while it runs.
// bridge-network.ts makes the bridge and its attachments, ports.ts chooses
// host ports, links.ts says what a link gives, icc.ts opens links when
// inter-container traffic is otherwise dropped.
import { refused } from '@stevedore/errors';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';
import type { BridgeNetwork } from './bridge-network';
import type { InterContainerPolicy, LinkedPorts } from './icc';
import { exposedPortList, linkEnv, parseLink } from './links';
import { resolvePorts, type PortMapping } from './ports';
import type { ContainerDb, ContainerRow } from './store/container-db';

export interface Link extends LinkedPorts {
  alias: string;
  /** The variables the link gives the container. */
  env: string[];
  childId: string;
}

/** What a start's network will be, checked before anything of the start is made. */
export interface NetworkPlan {
  mode: string;
  /** On the bridge (the default mode). */
  bridged: boolean;
  links: Link[];
}

/** Where the container's network is once it has joined it. */
export interface Joined {
  /** The namespace the OCI runtime joins; undefined: one of its own (`none`) or none at all (`host`). */
  netnsPath?: string;
  ipAddress?: string;
}

const MODES = ['default', 'bridge', 'none', 'host', ''];

export class ContainerNetwork {
  /** Host ports chosen for a container and not yet recorded, by container. */
  private readonly reservedPorts = new Map<string, PortMapping[]>();
  private portChoice: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: ContainerDb,
    private readonly bridge: BridgeNetwork,
    private readonly icc: InterContainerPolicy,
  ) {}

  /**
   * Start-up: the bridge's NAT and inter-container rules made; attachments of
   * containers that are not running (a crash, a reboot) undone.
   */
  async setUp(): Promise<void> {
    const rows = this.db.all();
    const running = new Set(rows.filter((r) => r.status === 'running').map((r) => r.id));
    await this.bridge.setup();
    await this.bridge.reconcile(running, new Map(rows.map((r) => [r.id, this.portsOf(r.id)])));
    await this.icc.setup(running);
    for (const r of rows) if (!running.has(r.id) && this.db.network(r.id)) this.db.removeNetwork(r.id);
  }

  /**
   * Checks the network mode and the links of a container about to start, and
   * records the names its links give (Docker 1.0 registered `/parent/alias`
   * as a name of the child when the parent started).
   */
  plan(row: ContainerRow, config: ContainerConfig, hostConfig: HostConfig): NetworkPlan {
    const mode = hostConfig.NetworkMode || 'default';
    if (!MODES.includes(mode) && !mode.startsWith('container:')) throw refused(`invalid network mode ${mode}`);
    const bridged = ['default', 'bridge', ''].includes(mode) && !config.NetworkDisabled;
    const links = this.linksOf(row, hostConfig, bridged);
    for (const l of links) this.db.setLink(row.id, l.alias, l.childId);
    return { mode, bridged, links };
  }

  /** Puts the container on its network: on the bridge with its published ports and links, or in another container's namespace. */
  async join(row: ContainerRow, config: ContainerConfig, hostConfig: HostConfig, plan: NetworkPlan): Promise<Joined> {
    let netnsPath: string | undefined;
    if (plan.bridged) {
      const ports = await this.reservePorts(row.id, config, hostConfig);
      try {
        const net = await this.bridge.attach(row.id, ports);
        this.db.setNetworkAndPorts(
          { container_id: row.id, ip_address: net.ipAddress, ip_prefix_len: net.ipPrefixLen, gateway: net.gateway, mac_address: net.macAddress, bridge: net.bridge },
          ports.map((p) => ({ container_id: row.id, container_port: p.containerPort, protocol: p.protocol, host_ip: p.hostIp, host_port: p.hostPort })),
        );
        await this.icc.allowLinks(row.id, net.ipAddress, plan.links);
      } finally {
        this.reservedPorts.delete(row.id);
      }
      netnsPath = this.bridge.netnsPath(row.id);
    }
    if (plan.mode.startsWith('container:')) return this.sharedNetwork(plan.mode.slice('container:'.length));
    return { netnsPath, ipAddress: this.db.network(row.id)?.ip_address };
  }

  /** Takes a container off the bridge, when it is on it. */
  async release(id: string): Promise<void> {
    if (!this.db.network(id)) return;
    await this.icc.revokeLinks(id);
    await this.bridge.detach(id, this.portsOf(id));
    this.db.removeNetwork(id);
  }

  /** The container's published ports, as recorded while it runs. */
  portsOf(id: string): PortMapping[] {
    return this.db.ports(id).map((p) => ({ containerPort: p.container_port, protocol: p.protocol as 'tcp' | 'udp', hostIp: p.host_ip, hostPort: p.host_port }));
  }

  /** `container:NAME`: the network namespace of another running container (its bridge address, if it has one). */
  private sharedNetwork(name: string): Joined {
    let other: ContainerRow;
    try {
      other = this.db.resolve(name);
    } catch {
      throw refused(`No such container: ${name}`);
    }
    if (other.status !== 'running' || !other.pid) throw refused(`cannot join network of a non running container: ${other.name}`);
    const net = this.db.network(other.id);
    return { netnsPath: net ? this.bridge.netnsPath(other.id) : `/proc/${other.pid}/ns/net`, ipAddress: net?.ip_address };
  }

  /** The containers a container links to: each running on the bridge, with what its link gives. */
  private linksOf(row: ContainerRow, hostConfig: HostConfig, bridged: boolean): Link[] {
    const specs = (hostConfig.Links ?? []).map(parseLink);
    if (specs.length && !bridged) throw refused('Links need bridge networking (the container joins no bridge)');
    return specs.map(({ target, alias }) => {
      let linked: ContainerRow;
      try {
        linked = this.db.resolve(target);
      } catch {
        throw refused(`Could not get container for ${target}`);
      }
      const net = this.db.network(linked.id);
      if (linked.status !== 'running' || !net) throw refused(`Cannot link to a non running container: ${linked.name} AS ${row.name}/${alias}`);
      const config = JSON.parse(linked.config) as ContainerConfig;
      const info = { name: linked.name, ipAddress: net.ip_address, env: config.Env ?? [], exposedPorts: Object.keys(config.ExposedPorts ?? {}) };
      return { alias, childId: linked.id, ipAddress: net.ip_address, ports: exposedPortList(info.exposedPorts), env: linkEnv(row.name, alias, info) };
    });
  }

  /** Works out a container's published ports, one container at a time, so that two never get the same host port. */
  private reservePorts(id: string, config: ContainerConfig, hostConfig: HostConfig): Promise<PortMapping[]> {
    const choice = this.portChoice.then(async () => {
      const taken = this.db.takenPorts();
      for (const ports of this.reservedPorts.values()) for (const p of ports) taken.add(`${p.hostPort}/${p.protocol}`);
      const ports = await resolvePorts(config, hostConfig, taken);
      this.reservedPorts.set(id, ports);
      return ports;
    });
    this.portChoice = choice.catch(() => undefined);
    return choice;
  }
}
