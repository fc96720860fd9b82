// Containers across a cluster's nodes: the list as the union of every node's
// (in Docker's order, with since, before and limit over the whole), a new
// container's node (Docker Swarm classic's filters and the strategy), and how
// a container shows its node (names as `/node/name` in lists, a `Node` object
// in inspect, published ports on the node's address).
import { chooseNode, PlacementError, takeFilters, type ContainerSummary, type Member, type PlacementRequest } from '@stevedore/cluster';
import type { StevedoreConfig } from '@stevedore/config';
import { containers as containersMessages, type containers } from '@stevedore/contracts';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';
import { refused } from '@stevedore/errors';
import type { ContainerRouter, RuntimeClient } from '../backends/container-router';

/** Swarm classic's `Node` in a container's inspect. */
export function nodeObject(m: Member) {
  return { Addr: m.runtime, Cpus: m.cpus, ID: m.name, IP: m.address, Labels: m.labels, Memory: m.memoryBytes, Name: m.name };
}

/** Ports published on every address of the node show the node's address, where clients reach them. */
export function onNode(c: containers.Container, node: Member): containers.Container {
  return { ...c, ports: c.ports.map((p) => (p.hostIp === '' || p.hostIp === '0.0.0.0' ? { ...p, hostIp: node.address } : p)) };
}

/** A listed container whose node is down: what the cluster's index keeps of it. */
function fromIndex(node: Member, id: string, s: ContainerSummary): containers.Container {
  return containersMessages.Container.fromPartial({ id, name: `/${node.name}${s.name}`, created: s.created, path: s.command[0] ?? '', args: s.command.slice(1), image: s.imageId, imageName: s.image });
}

export interface ClusterList {
  containers: containers.Container[];
  /** Those on a node that is down (their status is the node's: `Host Down`, as Swarm showed it). */
  onDownNodes: Set<string>;
}

/** GET /containers/json over every node; on a single host, the one runtime's list. */
export async function listAcrossNodes(router: ContainerRouter, requestId: string, q: containers.ListRequest): Promise<ClusterList> {
  const targets = await router.all();
  const members = await router.cluster.members();
  if (!members.length) return { containers: (await targets[0].rt.list(q, { requestId })).containers, onDownNodes: new Set() };
  // `since` and `before` name a container on one node: each node is given its creation time instead.
  const createdOf = async (ref: string) => {
    if (!ref) return '';
    const r = await router.of(ref);
    return (await r.rt.inspect({ id: r.ref }, { requestId })).created;
  };
  const [sinceCreated, beforeCreated] = await Promise.all([createdOf(q.since), createdOf(q.before)]);
  const lists = await Promise.all(
    targets.map(async ({ rt, node }) => {
      const r = await rt.list({ ...q, since: '', before: '', sinceCreated, beforeCreated }, { requestId });
      return r.containers.map((c) => ({ ...onNode(c, node!), name: `/${node!.name}${c.name}`, linkNames: c.linkNames.map((n) => `/${node!.name}${n}`) }));
    }),
  );
  // A node that is down: its containers as the index last knew them (without -a, those that ran or were to run).
  const onDownNodes = new Set<string>();
  const all = q.all || q.limit > 0 || Boolean(q.since || q.before);
  for (const node of members.filter((m) => !m.up)) {
    const known = (await router.cluster.index.containersOn(node.name)).filter((c) => c.summary && (all || c.active));
    const inBounds = known.filter((c) => (!beforeCreated || c.summary!.created < beforeCreated) && (!sinceCreated || c.summary!.created > sinceCreated));
    for (const c of inBounds) onDownNodes.add(c.id);
    lists.push(inBounds.map((c) => fromIndex(node, c.id, c.summary!)));
  }
  // Newest first, as one engine lists them.
  const merged = lists.flat().sort((a, b) => (a.created === b.created ? b.id.localeCompare(a.id) : a.created < b.created ? 1 : -1));
  return { containers: q.limit > 0 ? merged.slice(0, q.limit) : merged, onDownNodes };
}

const MAX_DEPENDENCIES = 64;

/** The containers a new one needs (links, volumes from, a container's network), as Swarm named them. */
function dependencies(h: HostConfig | undefined): Array<{ ref: string; text: string }> {
  const deps: Array<{ ref: string; text: string }> = [];
  for (const l of h?.Links ?? []) deps.push({ ref: l.split(':')[0], text: `--link=${l}` });
  for (const v of h?.VolumesFrom ?? []) deps.push({ ref: v.split(':')[0], text: `--volumes-from=${v}` });
  if (h?.NetworkMode?.startsWith('container:')) deps.push({ ref: h.NetworkMode.slice('container:'.length), text: `--net=${h.NetworkMode}` });
  return deps;
}

/**
 * The runtime a new container goes to. In a cluster, its placement filters
 * leave its environment (Swarm kept none of them in the container).
 */
export async function placeContainer(router: ContainerRouter, config: StevedoreConfig, c: ContainerConfig, h: HostConfig | undefined, requestId: string): Promise<RuntimeClient> {
  const members = await router.cluster.members();
  if (!members.length) return (await router.all())[0].rt;
  try {
    const { env, filters } = takeFilters(c.Env ?? []);
    if (c.Env) c.Env = env;
    const deps = dependencies(h);
    // Each is a lookup in the cluster's index.
    if (deps.length > MAX_DEPENDENCIES) throw new PlacementError(`at most ${MAX_DEPENDENCIES} links and volumes-from are taken`);
    const depNodes = new Set<string>();
    for (const d of deps) {
      const found = await router.cluster.index.locate(d.ref.replace(/^\//, ''));
      // One that does not exist is the runtime's to refuse, as on a single host.
      if (found && found !== 'ambiguous') depNodes.add(found.node);
    }
    if (depNodes.size > 1) throw new PlacementError(`Unable to find a node fulfilling all dependencies: ${deps.map((d) => d.text).join(' ')}`);
    const up = members.filter((m) => m.up);
    const active = await router.cluster.index.activeCounts(up.map((m) => m.name));
    const names = filters.some((f) => f.key === 'container') ? await router.cluster.index.namesByNode() : [];
    const images = filters.some((f) => f.key === 'image') ? await imagesByNode(router, up, requestId) : new Map<string, string[]>();
    const request: PlacementRequest = {
      filters,
      requiredNode: [...depNodes][0],
      strategy: config.placement,
      active: (n) => active.get(n) ?? 0,
      containersOn: (n) => names.filter((x) => x.node === n).map((x) => ({ name: x.name.replace(/^\//, ''), id: x.id })),
      imagesOn: (n) => images.get(n) ?? [],
    };
    return router.client(chooseNode(members, request));
  } catch (err) {
    if (err instanceof PlacementError) throw refused(err.message);
    throw err;
  }
}

/** Per node, the images its containers were made from (names and IDs): what an image affinity looks for. */
async function imagesByNode(router: ContainerRouter, up: Member[], requestId: string): Promise<Map<string, string[]>> {
  const lists = await Promise.all(up.map((m) => router.client(m).list({ all: true, limit: 0, since: '', before: '', size: false, sinceCreated: '', beforeCreated: '' }, { requestId })));
  return new Map(up.map((m, i) => [m.name, lists[i].containers.flatMap((c) => [c.imageName, c.image])]));
}
