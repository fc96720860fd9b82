// Events go out through the container records' own database: an event is
// written there in the same transaction as the change it reports, then
// appended to the Redis event log and only then deleted. A runtime killed
// between a change and its event, or a Redis that is down, delays the event;
// it never loses it (the next start, or the next try a second later, sends
// what is left, in order). An event can go twice (killed after the append,
// before the delete): a client waiting for `die` stops at the first.
import type { Logger } from '@stevedore/logging';
import type { EventLog, NewEvent } from '@stevedore/redis';
import type { ClusterPlace } from './cluster-place';
import type { ContainerDb, ContainerRow } from './store/container-db';

const RETRY_MS = 1000;

/** A container event as the event log takes it. */
export function containerEvent(action: string, row: ContainerRow, extra: Record<string, string> = {}): NewEvent {
  return { type: 'container', action, id: row.id, from: row.image_name, attributes: { image: row.image_name, name: row.name.replace(/^\//, ''), ...extra } };
}

export class EventOutbox {
  private draining = false;
  private retry?: NodeJS.Timeout;
  private idle: Array<() => void> = [];

  constructor(
    private readonly db: ContainerDb,
    private readonly log: EventLog,
    private readonly logger: Logger,
    /** A cluster's node: its events name it, and they keep the cluster's index of containers right (reliably, as they go). */
    private readonly cluster?: ClusterPlace & { address: string },
  ) {}

  /** What an event, once in the log, changes in the cluster's index: a start or an end counts for placement, a removal frees the name. */
  private async indexed(event: NewEvent): Promise<void> {
    const c = this.cluster;
    if (!c || event.type !== 'container') return;
    if (event.action === 'start') await c.index.setActive(event.id, c.node, true);
    else if (event.action === 'die') await c.index.setActive(event.id, c.node, false);
    else if (event.action === 'destroy') await c.index.release(event.id, c.node);
  }

  /** Queues an event without sending it: for a transaction that also records the change. */
  queue(event: NewEvent): void {
    const c = this.cluster;
    // On a cluster's node, each event names it (as Docker Swarm's did, in the attributes).
    const named = c ? { ...event, attributes: { ...event.attributes, 'node.name': c.node, 'node.addr': c.address } } : event;
    this.db.queueEvent(JSON.stringify(named));
  }

  /** Queues an event and sends what is queued. */
  publish(event: NewEvent): void {
    this.queue(event);
    this.drain();
  }

  /** Sends what is queued, in order; retried every second while Redis does not take it. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    clearTimeout(this.retry);
    void (async () => {
      try {
        for (let rows = this.db.queuedEvents(); rows.length; rows = this.db.queuedEvents()) {
          for (const row of rows) {
            const event = JSON.parse(row.event) as NewEvent;
            await this.log.append(event);
            await this.indexed(event);
            this.db.dropQueuedEvent(row.seq);
          }
        }
      } catch (err) {
        this.logger.warn({ err }, 'publishing events failed; trying again');
        this.retry = setTimeout(() => this.drain(), RETRY_MS);
      } finally {
        this.draining = false;
        if (!this.retry || this.db.queuedEvents(1).length === 0) for (const done of this.idle.splice(0)) done();
      }
    })();
  }

  /** Resolves once nothing is queued, or after `ms` (shutdown). */
  async flushed(ms: number): Promise<void> {
    if (this.db.queuedEvents(1).length === 0) return;
    this.drain();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    clearTimeout(this.retry);
  }
}
