// The event object of GET /events: Docker 1.0's `status`, `id`, `from`,
// `time`, plus `Type`, `Action`, `Actor`, `scope` and `timeNano`, which
// today's CLI reads (the exit code of `docker run` comes only from
// Actor.Attributes.exitCode). Older clients ignore the extra keys. In a
// cluster, an event of a node names it as Docker Swarm (classic) did: ` node:NAME`
// after `from`, a `node` object, and `node.*` among the attributes.
import type { events } from '@stevedore/contracts';
import { goJson } from '@stevedore/docker-api';

/** One event as JSON text; timeNano is written digit by digit (it exceeds 2^53). */
export function eventJson(e: events.Event): string {
  const head: Record<string, unknown> = { status: e.action, id: e.id };
  const node = e.attributes['node.name'];
  // Docker 1.0 left `from` out of image events (untag, delete).
  if (e.type === 'container' || e.from) head.from = node ? `${e.from} node:${node}` : e.from;
  const body = {
    ...head,
    ...(node ? { node: { Name: node, Id: node, Addr: e.attributes['node.addr'] ?? '', Ip: e.attributes['node.addr'] ?? '' } } : {}),
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.id, Attributes: e.attributes },
    scope: 'local',
    time: Math.floor(e.timeMs / 1000),
  };
  const text = goJson(body);
  return `${text.slice(0, -1)},"timeNano":${e.timeMs}000000}`;
}
