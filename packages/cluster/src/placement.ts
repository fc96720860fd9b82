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
/** Filters taken from one create. */
const MAX_FILTERS = 16;

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
    checkPattern(m[5]);
    filters.push({ kind, key: m[2], negate: m[3] === '!=', soft: m[4] === '~', value: m[5], text: entry.slice(m[1].length + 1) });
  }
  if (filters.length > MAX_FILTERS) throw new PlacementError(`at most ${MAX_FILTERS} filters are taken`);
  return { env: rest, filters };
}

/** Longest filter value taken (a pattern runs on the edge's one thread, against every container's name). */
const MAX_PATTERN = 256;
/** A group repeated (`(a+)+`), a backreference: the shapes whose matching time explodes with the input. */
const EXPLOSIVE = /\)[*+?{]|\\[1-9]/;
/** Quantifiers (`*`, `+`, `?`, `{n}`) not escaped; `(?` opens a group. */
const QUANTIFIER = /(?<![\\(])[*+?]|(?<!\\)\{\d/g;
/** At most this many in one regexp: each can multiply the matching time by the value's length (`/.*.*.*x/` is cubic). */
const MAX_QUANTIFIERS = 2;

/** Whether a filter's value can be matched in bounded time; refused otherwise. */
function checkPattern(pattern: string): void {
  if (pattern.length > MAX_PATTERN) throw new PlacementError(`a filter's value is limited to ${MAX_PATTERN} characters`);
  if (isRegExp(pattern)) {
    if (EXPLOSIVE.test(pattern)) throw new PlacementError(`invalid filter value ${pattern}: a repeated group or a backreference is not taken`);
    if ((pattern.match(QUANTIFIER) ?? []).length > MAX_QUANTIFIERS) throw new PlacementError(`invalid filter value ${pattern}: at most ${MAX_QUANTIFIERS} quantifiers are taken`);
    try {
      new RegExp(pattern.slice(1, -1));
    } catch (err) {
      throw new PlacementError(`invalid filter value ${pattern}: ${(err as Error).message}`);
    }
  }
}

function isRegExp(pattern: string): boolean {
  return pattern.length > 1 && pattern.startsWith('/') && pattern.endsWith('/');
}

/** A glob where `*` is anything, matched in linear time (the whole value must match). */
function globMatches(pattern: string, value: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === value;
  const [first, last] = [parts[0], parts[parts.length - 1]];
  if (!value.startsWith(first) || !value.endsWith(last) || value.length < first.length + last.length) return false;
  let at = first.length;
  const end = value.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = value.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

/** A value against a filter's: /regexp/ (checked by checkPattern), or a glob where `*` is anything. */
export function valueMatches(pattern: string, value: string): boolean {
  if (isRegExp(pattern)) {
    try {
      return new RegExp(pattern.slice(1, -1)).test(value);
    } catch {
      return false;
    }
  }
  return globMatches(pattern, value);
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

/** A constraint on a node's name (`node`) or one of its labels. */
function constraintHolds(node: Pick<Member, 'name' | 'labels'>, f: Filter): boolean {
  const value = f.key === 'node' ? node.name : node.labels[f.key];
  const hit = value !== undefined && valueMatches(f.value, value);
  return f.negate ? !hit : hit;
}

/** Whether a node meets every hard constraint among `filters` (a build's: preferences and affinities do not bind it). */
export function meetsConstraints(node: Pick<Member, 'name' | 'labels'>, filters: Filter[]): boolean {
  return filters.every((f) => f.kind !== 'constraint' || f.soft || constraintHolds(node, f));
}

function satisfies(m: Member, f: Filter, r: PlacementRequest): boolean {
  if (f.kind === 'constraint') return constraintHolds(m, f);
  let hit: boolean;
  if (f.key === 'container') {
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
