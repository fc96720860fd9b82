// Attachments to a container's standard streams, through its monitor's
// socket. One made while the container does not run waits for its next start
// (docker run attaches first, as Docker's attach waited on a stopped
// container: `start -a`) and is connected before the process runs, so it
// misses nothing.
import { refused } from '@stevedore/errors';
import type { containers } from '@stevedore/contracts';
import type { ContainerPaths } from './container-paths';
import type { ExitMonitor } from './exit-monitor';
import { Frame, ShimConnection } from '@stevedore/contracts';
import type { ContainerDb } from './store/container-db';

/** An attachment: what it wants, where its output goes, and the stdin held until it is connected. */
export interface Attachment {
  wantStdout: boolean;
  wantStderr: boolean;
  wantStdin: boolean;
  onOutput(stream: 1 | 2, data: Buffer): void;
  onEnd(): void;
  pendingStdin: Buffer[];
  stdinClosed: boolean;
  connection?: ShimConnection;
  /** The monitor has been sent what was pending: stdin goes straight to it from now on. */
  onConnected?(): void;
  /**
   * Hands the monitor's socket to the API edge, which subscribes to the
   * output there itself; resolves false when it did not (the output is then
   * relayed here).
   */
  directOutput?(socket: string): Promise<boolean>;
  /** Detached (its call ended): a connection made meanwhile is closed, and nothing more is asked of the monitor for it. */
  detached?: boolean;
}

export class Attachments {
  /** Attachments waiting for their container to start, by container. */
  private readonly pending = new Map<string, Set<Attachment>>();

  constructor(
    private readonly db: ContainerDb,
    private readonly paths: ContainerPaths,
    private readonly exits: ExitMonitor,
  ) {}

  /** Attaches to a container: connected now if it runs, otherwise at its next start. */
  async attach(id: string, a: Attachment): Promise<'attached' | 'pending' | 'not-running'> {
    const row = this.db.resolve(id);
    if (row.status === 'running' && this.exits.isWatched(row.id)) {
      await this.connect(row.id, a);
      return 'attached';
    }
    if (row.status === 'created' || row.status === 'exited') {
      this.pending.set(row.id, new Set([...(this.pending.get(row.id) ?? []), a]));
      return 'pending';
    }
    return 'not-running';
  }

  detach(id: string, a: Attachment): void {
    a.detached = true;
    this.pending.get(id)?.delete(a);
    a.connection?.close();
  }

  /** A start: the attachments waiting for it are connected to the new monitor. */
  async connectPending(id: string): Promise<void> {
    // One attachment that cannot be connected (its client went away meanwhile) ends alone: the start goes on.
    for (const a of this.pending.get(id) ?? []) await this.connect(id, a).catch(() => a.onEnd());
    this.pending.delete(id);
  }

  /** A start that will not come (it failed, or the container is removed): the attachments waiting for it end. */
  endPending(id: string): void {
    for (const a of this.pending.get(id) ?? []) a.onEnd();
    this.pending.delete(id);
  }

  async resize(req: containers.ResizeRequest): Promise<void> {
    const row = this.db.resolve(req.id);
    if (row.status !== 'running') throw refused(`Cannot resize container ${row.id}: it is not running`);
    await this.resizeSocket(this.paths.attachSocket(row.id), req.height, req.width);
  }

  /** Resizes the terminal of the process a monitor's socket serves. */
  async resizeSocket(socket: string, height: number, width: number): Promise<void> {
    const conn = await ShimConnection.connect(socket);
    conn.send(Frame.resize, `${height} ${width}`);
    conn.socket.end();
  }

  /** Connects an attachment to a running container's monitor. */
  private connect(id: string, a: Attachment): Promise<void> {
    return this.connectSocket(this.paths.attachSocket(id), a);
  }

  /**
   * Connects an attachment to a monitor's socket: subscribed to the output,
   * then `beforeInput` (an exec's start), then the stdin held for it.
   */
  async connectSocket(socket: string, a: Attachment, beforeInput?: () => Promise<void>): Promise<void> {
    const conn = await ShimConnection.connect(socket);
    a.connection = conn;
    if (a.detached) conn.close();
    conn.on('frame', (type: number, payload: Buffer) => {
      if (type === Frame.stdout && a.wantStdout) a.onOutput(1, payload);
      else if (type === Frame.stderr && a.wantStderr) a.onOutput(2, payload);
    });
    conn.on('close', () => a.onEnd());
    if ((a.wantStdout || a.wantStderr) && !a.detached) {
      // The output is the edge's to read when it took the monitor's socket; otherwise it comes here.
      const direct = await a.directOutput?.(socket);
      if (!direct && !a.detached) await conn.subscribe();
    }
    await beforeInput?.();
    if (a.detached) return;
    for (const chunk of a.pendingStdin) conn.send(Frame.stdin, chunk);
    a.pendingStdin = [];
    if (a.stdinClosed) conn.send(Frame.stdinClosed);
    a.onConnected?.();
  }
}
