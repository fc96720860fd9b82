// What the host holds that a stack could leave behind: network interfaces
// (veths, bridges), network namespaces, mounts, iptables rules, entries of
// /tmp. A snapshot
// before and one after must be equal: around one stack's life (a test), and
// around the whole suite (`stevedore test` takes one before and checks after).
//
//   node host-footprint.js save FILE    the snapshot, written to FILE
//   node host-footprint.js check FILE   fails (exit 1) when the host now differs
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export interface Footprint {
  links: string[];
  netns: string[];
  mounts: string[];
  rules: string[];
  tmp: string[];
}

/**
 * Made once per host and kept by design, never per container: the mount
 * `ip netns` makes of /run/netns itself, cgroup hierarchies mounted for the
 * OCI runtime, and the portmap plugin's shared chains and their jumps.
 */
const HOST_WIDE = [
  /^\/run\/netns$/,
  /^\/sys\/fs\/cgroup\//,
  /^:CNI-HOSTPORT-(DNAT|MASQ|SETMARK) /,
  /^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-(DNAT|MASQ)$/,
  /^-A CNI-HOSTPORT-(MASQ|SETMARK) /,
  /^stevedore-footprint\./, // the suite's own snapshot
];

const hostWide = (line: string): boolean => HOST_WIDE.some((re) => re.test(line));

export function snapshot(): Footprint {
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1].replace(/@.*/, ''));
  const netns = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : [];
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]);
  const rules = execFileSync('iptables-save', [], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('-A ') || (l.startsWith(':') && !/^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) /.test(l)))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
  const sorted = (xs: string[]): string[] => xs.filter((x) => !hostWide(x)).sort();
  return { links: sorted(links), netns: sorted(netns), mounts: sorted(mounts), rules: sorted(rules), tmp: sorted(fs.readdirSync('/tmp')) };
}

/** What `after` holds that `before` did not, and what it lost, per kind; empty when equal. */
export function difference(before: Footprint, after: Footprint): string[] {
  const out: string[] = [];
  for (const kind of ['links', 'netns', 'mounts', 'rules', 'tmp'] as const) {
    const was = new Set(before[kind]);
    const is = new Set(after[kind]);
    for (const x of is) if (!was.has(x)) out.push(`${kind} left behind: ${x}`);
    for (const x of was) if (!is.has(x)) out.push(`${kind} gone: ${x}`);
  }
  return out;
}

if (require.main === module) {
  const [command, file] = process.argv.slice(2);
  if (command === 'save' && file) fs.writeFileSync(file, JSON.stringify(snapshot()));
  else if (command === 'check' && file) {
    const diff = difference(JSON.parse(fs.readFileSync(file, 'utf8')) as Footprint, snapshot());
    if (diff.length) {
      process.stderr.write(`The host differs from before the suite:\n${diff.join('\n')}\n`);
      process.exit(1);
    }
    process.stdout.write('host footprint: the same as before the suite (interfaces, namespaces, mounts, iptables rules, /tmp)\n');
  } else {
    process.stderr.write('usage: host-footprint save|check FILE\n');
    process.exit(2);
  }
}
