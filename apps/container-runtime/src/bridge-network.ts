// Bridge networking through the standard CNI plugins Debian packages
// (containernetworking-plugins): `bridge` makes the bridge, the veth pair and
// the default route; `host-local` allocates addresses durably in the data
// root (a restart never hands one out twice); `portmap` publishes ports (DNAT
// from the host's addresses and 127.0.0.1). The NAT of outgoing traffic is
// one rule for the whole bridge, made at start-up, as Docker's daemon made
// its own: the plugin's chain per container (iptables at every ADD and DEL)
// was more than half of what the bridge added to a container's run. Each
// container's network namespace is a named one (`ip netns`), made before the
// OCI runtime creates the container, which joins it by path.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { refused } from '@stevedore/errors';
import { iptables, iptablesRestore } from './iptables';
import type { PortMapping } from './ports';

const run = promisify(execFile);

const CNI_PLUGIN_DIR = '/usr/lib/cni';
const NETNS_DIR = '/run/netns';
const IFNAME = 'eth0';

export interface BridgeSettings {
  /** The bridge's name (at most 15 characters). */
  bridge: string;
  /** IPv4 subnet in CIDR form; the bridge takes its first address. */
  subnet: string;
  /** The data root: host-local keeps its allocations below it, and names of namespaces are derived from it. */
  root: string;
}

export interface Attached {
  ipAddress: string;
  ipPrefixLen: number;
  gateway: string;
  macAddress: string;
  bridge: string;
}

interface CniResult {
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ address: string; gateway?: string; interface?: number }>;
}

export class BridgeNetwork {
  private readonly netnsPrefix: string;
  private readonly config: string;

  constructor(readonly settings: BridgeSettings) {
    if (settings.bridge.length > 15) throw new Error(`The bridge name ${settings.bridge} is longer than 15 characters`);
    // Namespaces of two stacks on one host never share a name.
    this.netnsPrefix = `sd${createHash('sha256').update(settings.root).digest('hex').slice(0, 6)}-`;
    this.config = JSON.stringify({
      cniVersion: '0.4.0',
      name: `stevedore-${settings.bridge}`,
      type: 'bridge',
      bridge: settings.bridge,
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: settings.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: path.join(settings.root, 'network', 'ipam') },
    });
  }

  /**
   * Start-up: the bridge's outgoing NAT, one rule (`-s SUBNET ! -o BRIDGE -j
   * MASQUERADE`), made when missing; a rule of an earlier subnet, and the
   * per-container chains the plugin made before the rule existed, go.
   */
  async setup(): Promise<void> {
    const { bridge, subnet } = this.settings;
    const comment = `stevedore-${bridge} outgoing NAT`;
    const rule = `-A POSTROUTING -s ${subnet} ! -o ${bridge} -m comment --comment "${comment}" -j MASQUERADE`;
    const rules = (await iptables(['-t', 'nat', '-S', 'POSTROUTING'])).split('\n');
    const staleOwn = rules.filter((l) => l.includes(comment) && l !== rule);
    const perContainer = rules.filter((l) => l.includes(`name: \\"stevedore-${bridge}\\"`));
    const chains = perContainer.map((l) => /-j (CNI-[0-9a-f]+)/.exec(l)?.[1]).filter((c): c is string => Boolean(c));
    await iptablesRestore('nat', [
      ...[...staleOwn, ...perContainer].map((l) => l.replace(/^-A /, '-D ')),
      ...chains.flatMap((c) => [`-F ${c}`, `-X ${c}`]),
    ]);
    if (!rules.includes(rule)) await iptables(['-t', 'nat', '-A', 'POSTROUTING', '-s', subnet, '!', '-o', bridge, '-m', 'comment', '--comment', comment, '-j', 'MASQUERADE']);
  }

  netnsName(id: string): string {
    return `${this.netnsPrefix}${id.slice(0, 12)}`;
  }

  netnsPath(id: string): string {
    return path.join(NETNS_DIR, this.netnsName(id));
  }

  private portmapConfig(ports: PortMapping[], prevResult?: CniResult): string {
    return JSON.stringify({
      cniVersion: '0.4.0',
      name: `stevedore-${this.settings.bridge}`,
      type: 'portmap',
      snat: true,
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, ...(p.hostIp ? { hostIP: p.hostIp } : {}) })) },
      ...(prevResult ? { prevResult } : {}),
    });
  }

  private async plugin(command: 'ADD' | 'DEL', id: string, type: 'bridge' | 'portmap' = 'bridge', config = this.config): Promise<CniResult> {
    const child = execFile(path.join(CNI_PLUGIN_DIR, type), [], {
      env: { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: this.netnsPath(id), CNI_IFNAME: IFNAME, CNI_PATH: CNI_PLUGIN_DIR, PATH: process.env.PATH },
      timeout: 30_000,
    });
    let stdout = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stdin?.end(config);
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
    if (code !== 0) {
      let message = stdout.trim();
      try {
        const err = JSON.parse(stdout) as { msg?: string; details?: string };
        message = [err.msg, err.details].filter(Boolean).join(': ');
      } catch {
        // not JSON: the text as it is
      }
      throw refused(`bridge networking (${type} ${command}) failed: ${message || `exit ${code}`}`);
    }
    return stdout.trim() ? (JSON.parse(stdout) as CniResult) : {};
  }

  /** Gives the container a namespace of its own on the bridge; undone in full when a step fails. */
  async attach(id: string, ports: PortMapping[] = []): Promise<Attached> {
    await run('ip', ['netns', 'add', this.netnsName(id)]);
    try {
      // The runtime brings loopback up only in namespaces it makes itself.
      await run('ip', ['-n', this.netnsName(id), 'link', 'set', 'lo', 'up']);
      const result = await this.plugin('ADD', id);
      if (ports.length) await this.plugin('ADD', id, 'portmap', this.portmapConfig(ports, result));
      const ip = result.ips?.[0];
      if (!ip) throw refused('bridge networking gave the container no address');
      const [address, prefix] = ip.address.split('/');
      const eth = result.interfaces?.find((i) => i.name === IFNAME && i.sandbox);
      return { ipAddress: address, ipPrefixLen: Number(prefix), gateway: ip.gateway ?? '', macAddress: eth?.mac ?? '', bridge: this.settings.bridge };
    } catch (err) {
      await this.detach(id, ports);
      throw err;
    }
  }

  /** Takes the container off the bridge: its address back, its veth and NAT rules gone, its namespace deleted. */
  async detach(id: string, ports: PortMapping[] | 'unknown'): Promise<void> {
    // portmap finds its rules by the container's ID, but does nothing when given no mapping.
    const mappings = ports === 'unknown' ? [{ containerPort: 1, protocol: 'tcp' as const, hostIp: '', hostPort: 1 }] : ports;
    if (mappings.length) await this.plugin('DEL', id, 'portmap', this.portmapConfig(mappings)).catch(() => undefined);
    if (fs.existsSync(this.netnsPath(id)) || this.allocated(id)) await this.plugin('DEL', id).catch(() => undefined);
    await run('ip', ['netns', 'delete', this.netnsName(id)]).catch(() => undefined);
  }

  private get ipamDir(): string {
    return path.join(this.settings.root, 'network', 'ipam', `stevedore-${this.settings.bridge}`);
  }

  /** Whether host-local holds an address for this container. */
  private allocated(id: string): boolean {
    return this.allocations().includes(id);
  }

  /**
   * Namespaces and addresses of this stack whose container is not running
   * any more (a crash, a reboot): detached. `known` are the containers whose
   * published ports are on record.
   */
  async reconcile(running: Set<string>, known: Map<string, PortMapping[]>): Promise<void> {
    const byName = new Map([...known.keys()].map((id) => [this.netnsName(id), id]));
    const done = new Set<string>();
    const names = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR).filter((n) => n.startsWith(this.netnsPrefix)) : [];
    for (const name of names) {
      const id = byName.get(name);
      if (id && running.has(id)) continue;
      if (id) {
        await this.detach(id, known.get(id) ?? 'unknown');
        done.add(id);
      } else await run('ip', ['netns', 'delete', name]).catch(() => undefined);
    }
    // Addresses held for containers that are not running (or not known any more).
    for (const id of this.allocations()) if (!running.has(id) && !done.has(id)) await this.detach(id, known.get(id) ?? 'unknown');
  }

  /** The container IDs host-local holds addresses for. */
  private allocations(): string[] {
    const dir = this.ipamDir;
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8').split(/\s/)[0])
      .filter(Boolean);
  }
}
