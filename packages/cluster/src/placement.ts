// Where a new container goes: Docker Swarm (classic)'s filters, given as
// environment entries at create (`constraint:node==NAME`, `constraint:KEY==V`
// on a node's labels, `affinity:container==NAME`, `affinity:image==NAME`;
// `!=` for the opposite, `~` after the operator for a preference only, a
// value `/regexp/` or a glob with `*`), then a strategy among the nodes left:
// spread (fewest containers that run or will: running, or created and not
// started) or binpack (most). A container that needs another one (a link,
// volumes from it, its network) goes to that one's node.
import type { Member } from './membership';

export type Strategy = 'spread' | 'binpack';

export interface Filter {
  kind: 'constraint' | 'affinity';
  key: string;
  negate: boolean;
  soft: boolean;
  value: string;
  /** As written after the prefix (`node==n1`), for messages. */
  text: string;
}

export class PlacementError extends Error {}

const FILTER = /^(constraint|affinity):([A-Za-z0-9_.\-/]+)(==|!=)(~?)(.*)$/;

/** The filters among a container's environment entries, and the entries left (Swarm kept none of them in the container). */
export function takeFilters(env: string[]): { env: string[]; filters: Filter[] } {
  const filters: Filter[] = [];
  const rest: string[] = [];
  for (const entry of env) {
    if (!/^(constraint|affinity):/.test(entry)) {
      rest.push(entry);
      continue;
    }
    const m = FILTER.exec(entry);
    if (!m || !m[5]) throw new PlacementError(`invalid filter ${JSON.stringify(entry)}: expected ${entry.split(':')[0]}:KEY==VALUE or KEY!=VALUE`);
    const kind = m[1] as Filter['kind'];
    if (kind === 'affinity' && m[2] !== 'container' && m[2] !== 'image') throw new PlacementError(`invalid affinity ${JSON.stringify(entry)}: it names a container or an image`);
    filters.push({ kind, key: m[2], negate: m[3] === '!=', soft: m[4] === '~', value: m[5], text: entry.slice(m[1].length + 1) });
  }
  return { env: rest, filters };
}

/** A value against a filter's: /regexp/, or a glob where `*` is anything (the whole value must match). */
export function valueMatches(pattern: string, value: string): boolean {
  if (pattern.length > 1 && pattern.startsWith('/') && pattern.endsWith('/')) {
    try {
      return new RegExp(pattern.slice(1, -1)).test(value);
    } catch {
      return false;
    }
  }
  const re = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${re}$`).test(value);
}

export interface PlacementRequest {
  filters: Filter[];
  /** The node the container must go to because of what it needs, if any (already checked to be one node). */
  requiredNode?: string;
  strategy: Strategy;
  /** Per node, the containers on it (name without '/', and ID), for container affinities. */
  containersOn(node: string): Array<{ name: string; id: string }>;
  /** Per node, the images its containers use (names and IDs), for image affinities. */
  imagesOn(node: string): string[];
  /** Per node, the containers that count for spreading. */
  active(node: string): number;
}

function satisfies(m: Member, f: Filter, r: PlacementRequest): boolean {
  let hit: boolean;
  if (f.kind === 'constraint') {
    const value = f.key === 'node' ? m.name : m.labels[f.key];
    hit = value !== undefined && valueMatches(f.value, value);
  } else if (f.key === 'container') {
    hit = r.containersOn(m.name).some((c) => valueMatches(f.value, c.name) || c.id.startsWith(f.value));
  } else {
    hit = r.imagesOn(m.name).some((image) => valueMatches(f.value, image) || valueMatches(`${f.value}:latest`, image) || (f.value.length >= 4 && image.startsWith(f.value)));
  }
  return f.negate ? !hit : hit;
}

/** The node a container goes to, among those up; PlacementError (with Swarm's words) when none will do. */
export function chooseNode(members: Member[], r: PlacementRequest): Member {
  let candidates = members.filter((m) => m.up);
  if (!candidates.length) throw new PlacementError('No healthy node available in the cluster');
  if (r.requiredNode) {
    candidates = candidates.filter((m) => m.name === r.requiredNode);
    if (!candidates.length) throw new PlacementError(`Unable to find a node fulfilling all dependencies: the node ${r.requiredNode} they are on is down`);
  }
  for (const f of r.filters) {
    const left = candidates.filter((m) => satisfies(m, f, r));
    if (left.length) candidates = left;
    else if (!f.soft) throw new PlacementError(`unable to find a node that satisfies ${f.text}`);
  }
  const sign = r.strategy === 'spread' ? 1 : -1;
  return [...candidates].sort((a, b) => sign * (r.active(a.name) - r.active(b.name)) || sign * (a.counts.containers - b.counts.containers) || a.name.localeCompare(b.name))[0];
}
