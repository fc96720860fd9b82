// A node's heartbeat: it joins as its runtime starts, beats every second with
// its counts while the runtime runs, and leaves as the runtime stops.
import type { Logger } from '@stevedore/logging';
import { Counter, once } from '@stevedore/metrics';
import { HEARTBEAT_MS, type Membership, type NodeCounts, type NodeRecord } from './membership';

const beats = once('stevedore_node_heartbeats_total', () => new Counter({ name: 'stevedore_node_heartbeats_total', help: 'Heartbeats a node sent to the cluster, by node and whether Redis took them', labelNames: ['node', 'outcome'] }));

export class NodeHeartbeat {
  private timer?: NodeJS.Timeout;
  private failing = false;

  constructor(
    private readonly membership: Membership,
    private readonly record: NodeRecord,
    private readonly counts: () => NodeCounts,
    private readonly log: Logger,
  ) {}

  /** Joins (refused when a live node holds the name elsewhere), then beats until stopped. */
  async start(): Promise<void> {
    await this.membership.join(this.record, this.counts());
    this.log.info({ node: this.record.name, address: this.record.address }, 'joined the cluster');
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
  }

  private async beat(): Promise<void> {
    try {
      await this.membership.beat(this.record, this.counts());
      beats.inc({ node: this.record.name, outcome: 'sent' });
      if (this.failing) this.log.info({ node: this.record.name }, 'heartbeats reach Redis again');
      this.failing = false;
    } catch (err) {
      // Redis away: the node shows as down until a beat gets through.
      beats.inc({ node: this.record.name, outcome: 'failed' });
      if (!this.failing) this.log.warn({ err: (err as Error).message }, 'a heartbeat did not reach Redis');
      this.failing = true;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.membership.leave(this.record.name).catch(() => undefined);
  }
}
