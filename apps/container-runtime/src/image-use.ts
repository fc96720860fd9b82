// Which container uses which image is recorded by the image store (an image
// in use cannot be deleted), told by this runtime as containers are created,
// started, stopped and removed. A call lost while the store was away (a
// release after `rm`, the end of a container) would leave that record wrong
// for good: `rmi` refused forever, or an image deleted under a container. So
// the runtime also sends its whole account, one use per container record,
// and the store replaces its record with it in one transaction: at the
// runtime's start, whenever its connection to the store becomes ready again
// (a restarted store is a new connection, so the store needs no call of its
// own), and after a call to the store failed.
import * as grpc from '@grpc/grpc-js';
import type { images } from '@stevedore/contracts';
import type { Logger } from '@stevedore/logging';
import type { ServiceClient } from '@stevedore/service-kit';

/** How long a reconciliation waits for the store's answer. */
const RECONCILE_TIMEOUT_MS = 10_000;
/** Between attempts after a failed one (doubling up to the last). */
const RETRY_MS = [500, 1000, 2000, 5000];

/** What reconciling needs of the image store's client: its call, and the connection whose state tells when the store is back. */
export interface ImageUseCalls {
  readonly reconcileImageUse: ServiceClient<typeof images.ImageStoreService>['reconcileImageUse'];
  readonly connection: {
    getChannel(): Pick<grpc.ChannelInterface, 'getConnectivityState' | 'watchConnectivityState'>;
    waitForReady: grpc.Client['waitForReady'];
  };
}

export class ImageUseReconciler {
  /** Changes of image use in progress (a call to the store and the record it goes with). */
  private changes = 0;
  private drained?: () => void;
  /** A reconciliation holding new changes back until it is done. */
  private exclusive?: Promise<void>;
  private wanted = false;
  private loop?: Promise<void>;
  private closed = false;

  constructor(
    private readonly client: ImageUseCalls,
    /** Every container's use of its image, from the records as they are now. */
    private readonly account: () => images.ImageUse[],
    private readonly log: Logger,
    /** A cluster's node: the store replaces only this node's uses with its account. */
    private readonly node = '',
  ) {}

  /**
   * Runs a change of image use: a UseImage or ReleaseImage call together
   * with the container record it goes with (a create's use and its new
   * record, in either order). A reconciliation waits for the changes in
   * progress and holds new ones back, so that its account is taken between
   * changes: a use just recorded by the store is never dropped by an account
   * that predates its container's record, and a release is never undone by
   * one that still had the container.
   */
  async change<T>(fn: () => Promise<T>): Promise<T> {
    const end = await this.begin();
    try {
      return await fn();
    } finally {
      end();
    }
  }

  /** A change of image use begins (see change); it ends when the function returned is called. */
  async begin(): Promise<() => void> {
    while (this.exclusive) await this.exclusive;
    this.changes++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.changes === 0) this.drained?.();
    };
  }

  /** Reconciles now (once the store answers), and again whenever the connection to it becomes ready again. */
  start(): void {
    this.request();
    this.followConnection(this.client.connection.getChannel().getConnectivityState(true));
  }

  /** Asks for a reconciliation: after a call to the store failed (it may or may not have been recorded). */
  request(): void {
    if (this.closed) return;
    this.wanted = true;
    this.loop ??= this.reconcileWhileWanted().finally(() => (this.loop = undefined));
  }

  close(): void {
    this.closed = true;
  }

  /** Every change of the channel's state: a new READY is a new connection, to a store that may have restarted. */
  private followConnection(last: grpc.connectivityState): void {
    const channel = this.client.connection.getChannel();
    // While not connected, the channel is nudged to connect (it stays idle otherwise) once a second.
    const deadline = last === grpc.connectivityState.READY ? Infinity : Date.now() + 1000;
    channel.watchConnectivityState(last, deadline, () => {
      if (this.closed) return;
      const now = channel.getConnectivityState(true);
      if (now === grpc.connectivityState.READY && last !== grpc.connectivityState.READY) this.request();
      this.followConnection(now);
    });
  }

  private async reconcileWhileWanted(): Promise<void> {
    for (let attempt = 0; this.wanted && !this.closed; ) {
      this.wanted = false;
      try {
        await this.storeReady();
        if (this.closed) return;
        await this.reconcile();
        attempt = 0;
      } catch (err) {
        this.log.warn({ err }, 'reconciling image use with the image store failed; tried again');
        this.wanted = true;
        await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]).unref());
      }
    }
  }

  /** Waits for a connection to the store, without holding changes back meanwhile. */
  private async storeReady(): Promise<void> {
    while (!this.closed) {
      const ready = await new Promise<boolean>((resolve) => this.client.connection.waitForReady(Date.now() + 5000, (err) => resolve(!err)));
      if (ready) return;
    }
  }

  private async reconcile(): Promise<void> {
    let done!: () => void;
    this.exclusive = new Promise<void>((r) => (done = r));
    try {
      while (this.changes > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      const uses = this.account();
      const r = await this.client.reconcileImageUse({ uses, node: this.node }, { requestId: 'reconcile-image-use', timeoutMs: RECONCILE_TIMEOUT_MS });
      if (r.unknownImages.length) {
        // Deleted while a use of it was lost (Docker 1.0 refused that; nothing brings the layers back).
        this.log.warn({ uses: r.unknownImages }, 'containers whose image the image store does not have');
      }
      this.log.info({ uses: uses.length, added: r.added, dropped: r.dropped }, 'image use reconciled with the image store');
    } finally {
      this.exclusive = undefined;
      done();
    }
  }
}
