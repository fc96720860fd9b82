// A node's heartbeat: it joins as its runtime starts, beats every second with
// its counts while the runtime runs, and leaves as the runtime stops.
import type { Logger } from '@stevedore/logging';
import { HEARTBEAT_MS, type Membership, type NodeCounts, type NodeRecord } from './membership';

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
      if (this.failing) this.log.info({ node: this.record.name }, 'heartbeats reach Redis again');
      this.failing = false;
    } catch (err) {
      // Redis away: the node shows as down until a beat gets through.
      if (!this.failing) this.log.warn({ err: (err as Error).message }, 'a heartbeat did not reach Redis');
      this.failing = true;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.membership.leave(this.record.name).catch(() => undefined);
  }
}
