// Each running container is followed through its monitor (native/shim.c):
// the connection to the monitor's socket closes when the container has
// exited. The exit is then recorded (code and time, from the monitor's
// exit.json) with its `die`, and what the container held is released: its
// root filesystem, its place on the bridge, its image's running use. Those
// waiting for the exit (wait, stop, remove) are answered once all of it is done.
import * as fs from 'node:fs';
import { refused } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import type { ContainerImages } from './container-images';
import type { ContainerNetwork } from './container-network';
import type { ContainerPaths } from './container-paths';
import { containerEvent, type EventOutbox } from './event-outbox';
import type { OciRuntimeRunner } from './oci-runtime';
import { unmountRootfs } from './rootfs';
import type { ShimConnection } from '@stevedore/contracts';
import type { ContainerDb, ContainerRow } from './store/container-db';

/** Docker's exit code for a container whose monitor died without recording its exit (as if SIGKILLed). */
const LOST_EXIT_CODE = 137;

export interface ExitMonitorParts {
  db: ContainerDb;
  paths: ContainerPaths;
  runner: OciRuntimeRunner;
  outbox: EventOutbox;
  images: ContainerImages;
  network: ContainerNetwork;
  log: Logger;
}

export class ExitMonitor {
  private readonly monitors = new Map<string, ShimConnection>();
  /** Exits being recorded: until one settles, the container's files are still being released. */
  private readonly exiting = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, Array<(code: number) => void>>();

  constructor(private readonly p: ExitMonitorParts) {}

  /** Follows a running container's monitor; its connection closes when the container has exited. */
  watch(id: string, monitor: ShimConnection): void {
    this.monitors.set(id, monitor);
    monitor.on('close', () => {
      if (this.monitors.get(id) === monitor) this.monitors.delete(id);
      this.exited(id).catch((err) => this.p.log.error({ err, id }, 'recording an exit failed'));
    });
  }

  isWatched(id: string): boolean {
    return this.monitors.has(id);
  }

  /** Stops following a container whose start failed (its monitor is told nothing more). */
  unwatch(id: string): void {
    this.monitors.get(id)?.close();
    this.monitors.delete(id);
  }

  /** Shutdown: the connections to every monitor close (the monitors stay, and the next start adopts their containers). */
  close(): void {
    for (const m of this.monitors.values()) m.close();
  }

  /** Records a container's exit, once: a second call for the same exit gets the first one's. */
  exited(id: string): Promise<void> {
    const running = this.exiting.get(id);
    if (running) return running;
    const p = this.recordExit(id).finally(() => this.exiting.delete(id));
    this.exiting.set(id, p);
    return p;
  }

  /** Waits until an exit being recorded has released the root filesystem. */
  async settled(id: string): Promise<void> {
    await this.exiting.get(id)?.catch(() => undefined);
  }

  /**
   * Records that a container is not running any more, and its `die`, as one
   * change: a runtime killed here leaves both or neither.
   */
  markExited(row: ContainerRow, exitCode: number, finishedAt: string): void {
    this.p.db.transaction(() => {
      this.p.db.markExited(row.id, exitCode, finishedAt);
      this.p.outbox.queue(containerEvent('die', row, { exitCode: String(exitCode) }));
    });
    this.p.outbox.drain();
  }

  /** Resolves with the exit code once the container is not running (and its exit has settled). */
  async wait(ref: string): Promise<number> {
    let row: ContainerRow;
    try {
      row = this.p.db.resolve(ref);
    } catch {
      // Docker 1.0: a 500 whose lower-case "no such" escaped its 404 mapping.
      throw refused(`wait: no such container: ${ref}`);
    }
    if (row.status !== 'running') {
      await this.settled(row.id);
      return this.p.db.get(row.id)?.exit_code ?? row.exit_code;
    }
    return new Promise((resolve) => this.waiters.set(row.id, [...(this.waiters.get(row.id) ?? []), resolve]));
  }

  /** Whether the container's exit was recorded within `ms`. */
  untilExited(row: ContainerRow, ms: number): Promise<boolean> {
    const done = this.wait(row.id).then(() => true);
    return Promise.race([done, new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  }

  private async recordExit(id: string): Promise<void> {
    const { db, paths, runner, images, network, log } = this.p;
    const row = db.get(id);
    if (!row || row.status !== 'running') return;
    let exitCode = LOST_EXIT_CODE;
    let finishedAt = new Date().toISOString();
    try {
      const e = JSON.parse(fs.readFileSync(paths.exitFile(id), 'utf8')) as { exitCode: number; finishedAt: string };
      exitCode = e.exitCode;
      finishedAt = e.finishedAt;
    } catch {
      // The monitor died without recording the exit: the container went with it.
      await runner.forceDelete(id).catch(() => undefined);
    }
    // A stopped container has no address: inspect says so from `die` on (it shows the
    // network of running containers only) while the bridge lets go of it.
    const onBridge = Boolean(db.network(id));
    // (The `die` is from the row as it was: a removal may follow at once.)
    this.markExited(row, exitCode, finishedAt);
    // The image is now used by a stopped container only (told while the root filesystem is released).
    const imageUse = images.change(() => images.use(row.image_id, id, false, 'exit')).catch((err) => log.warn({ err, id }, 'updating the image use failed'));
    const released = (onBridge ? network.release(id) : Promise.resolve()).catch((err) => log.warn({ err, id }, 'taking a container off the bridge failed'));
    await unmountRootfs(paths.dir(id));
    fs.rmSync(paths.stateDir(id), { recursive: true, force: true });
    await Promise.all([imageUse, released]);
    for (const w of this.waiters.get(id) ?? []) w(exitCode);
    this.waiters.delete(id);
  }
}
