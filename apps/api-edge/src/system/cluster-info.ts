// What `docker info` says of a cluster, where Docker Swarm (classic) said it:
// in DriverStatus, a `\b`-marked head (strategy, filters, node count) and
// per node its address, then ` └ ` lines (status, containers, labels, the
// last error, the time of its last heartbeat); the counts summed over nodes.
import type { Member } from '@stevedore/cluster';
import { binarySize } from '@stevedore/docker-api';

export interface ClusterTotals {
  containers: number;
  /** Running and not paused, as Docker counts them. */
  running: number;
  paused: number;
  stopped: number;
  cpus: number;
  memoryBytes: number;
}

export function clusterDriverStatus(members: Member[], strategy: string): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    ['\bStrategy', strategy],
    ['\bFilters', 'health, dependency, affinity, constraint'],
    ['\bNodes', String(members.length)],
  ];
  for (const m of members) {
    const labels = Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).sort().join(', ');
    rows.push(
      [m.name, m.address],
      [' └ Status', m.up ? 'Healthy' : 'Unhealthy'],
      [' └ Containers', String(m.counts.containers)],
      [' └ CPUs', String(m.cpus)],
      [' └ Memory', binarySize(m.memoryBytes)],
      [' └ Labels', labels],
      [' └ Error', m.up ? '(none)' : 'no heartbeat for more than 5 s'],
      [' └ UpdatedAt', m.beatAt],
    );
  }
  return rows;
}

/** The counts of the nodes that are up (a down node's are not known until it is back). */
export function clusterTotals(members: Member[]): ClusterTotals {
  const up = members.filter((m) => m.up);
  const sum = (f: (m: Member) => number) => up.reduce((n, m) => n + f(m), 0);
  return {
    containers: sum((m) => m.counts.containers),
    running: sum((m) => m.counts.running - m.counts.paused),
    paused: sum((m) => m.counts.paused),
    stopped: sum((m) => m.counts.containers - m.counts.running),
    cpus: sum((m) => m.cpus),
    memoryBytes: sum((m) => m.memoryBytes),
  };
}
