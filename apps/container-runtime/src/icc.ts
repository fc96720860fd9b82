// Inter-container communication on the bridge. Allowed by default; with the
// setting off (STEVEDORE_ICC=false) a chain of the stack's own drops traffic
// between two containers of its bridge, except what links open: from the
// linking container to each exposed port of the linked one, and the answers
// back, as Docker 1.0's `--icc=false` did. Bridged frames reach iptables only
// through br_netfilter (`bridge-nf-call-iptables`), which the setting needs.
//
// Each link's rules carry the linking container's ID in a comment: they go when
// it leaves the bridge, and at start-up those of containers that stopped while
// the runtime was away are found and removed.
import * as fs from 'node:fs';
import { iptables, iptablesRestore } from './iptables';

const BRIDGE_NF = '/proc/sys/net/bridge/bridge-nf-call-iptables';

export interface LinkedPorts {
  /** The linked container's address. */
  ipAddress: string;
  ports: Array<{ port: number; proto: string }>;
}

export class InterContainerPolicy {
  readonly chain: string;

  constructor(
    private readonly bridge: string,
    readonly allowed: boolean,
  ) {
    this.chain = `SD-ICC-${bridge}`;
  }

  private tag(id: string): string {
    return `sd:${id.slice(0, 12)}`;
  }

  /**
   * Start-up: with the setting off, the chain and the bridge's jump to it
   * exist (rules of running containers kept, the others' removed); with it on,
   * a chain left from an earlier setting goes.
   */
  async setup(running: Set<string>): Promise<void> {
    const jump = ['FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', this.chain];
    const exists = await iptables(['-S', this.chain]).then(
      (rules) => rules,
      () => undefined,
    );
    if (this.allowed) {
      if (exists === undefined) return;
      await iptables(['-D', ...jump]).catch(() => undefined);
      await iptables(['-F', this.chain]);
      await iptables(['-X', this.chain]);
      return;
    }
    if (!fs.existsSync(BRIDGE_NF)) throw new Error(`STEVEDORE_ICC=false needs the kernel's br_netfilter module (${BRIDGE_NF} is missing): load it with \`modprobe br_netfilter\``);
    if (fs.readFileSync(BRIDGE_NF, 'utf8').trim() !== '1') fs.writeFileSync(BRIDGE_NF, '1');
    if (exists === undefined) {
      await iptables(['-N', this.chain]);
      await iptables(['-A', this.chain, '-j', 'DROP']);
    } else {
      const tags = new Set([...running].map((id) => this.tag(id)));
      const stale = exists.split('\n').filter((l) => {
        const tag = /--comment "?(sd:[0-9a-f]{12})/.exec(l)?.[1];
        return tag !== undefined && !tags.has(tag);
      });
      await iptablesRestore('filter', stale.map((l) => l.replace(/^-A /, '-D ')));
    }
    await iptables(['-C', ...jump]).catch(() => iptables(['-I', ...jump.slice(0, 1), '1', ...jump.slice(1)]));
  }

  /** Opens the links of a container that joined the bridge at `ipAddress`. */
  async allowLinks(id: string, ipAddress: string, links: LinkedPorts[]): Promise<void> {
    if (this.allowed) return;
    const comment = ['-m', 'comment', '--comment', this.tag(id), '-j', 'ACCEPT'].join(' ');
    const lines = links.flatMap((l) =>
      l.ports.flatMap(({ port, proto }) => [
        `-I ${this.chain} -s ${ipAddress} -d ${l.ipAddress} -p ${proto} --dport ${port} ${comment}`,
        `-I ${this.chain} -s ${l.ipAddress} -d ${ipAddress} -p ${proto} --sport ${port} ${comment}`,
      ]),
    );
    await iptablesRestore('filter', lines);
  }

  /** Closes the links a container opened. */
  async revokeLinks(id: string): Promise<void> {
    if (this.allowed) return;
    const rules = await iptables(['-S', this.chain]).catch(() => '');
    await iptablesRestore(
      'filter',
      rules
        .split('\n')
        .filter((l) => l.includes(this.tag(id)))
        .map((l) => l.replace(/^-A /, '-D ')),
    );
  }
}
