// Copies in and out of containers (cp, GET, HEAD and PUT archive, POST
// copy, export) run on the container's root filesystem, mounted for the
// while when the container is stopped, with every process of a running
// container frozen while they last (freezer.ts).
import { withRootfs } from './container-fs';
import type { ContainerImages } from './container-images';
import type { ContainerPaths } from './container-paths';
import { containerEvent, type EventOutbox } from './event-outbox';
import type { ExitMonitor } from './exit-monitor';
import type { ContainerFreezer } from './freezer';
import type { ContainerDb, ContainerRow } from './store/container-db';

export interface CopyParts {
  db: ContainerDb;
  paths: ContainerPaths;
  images: ContainerImages;
  exits: ExitMonitor;
  freezer: ContainerFreezer;
  outbox: EventOutbox;
}

export class ContainerCopies {
  constructor(private readonly p: CopyParts) {}

  /**
   * Runs a copy on the container's root filesystem. The copy reaches the
   * files below the root by host paths, one name at a time; a running
   * container could swap a directory for a link to `/` between two of those
   * steps (CVE-2018-15664) and have the host's files copied out or written;
   * a frozen one changes nothing. The container is thawed when the last of
   * its copies ends (done, failed, or its client gone), unless it was paused
   * meanwhile. `signal` (the call's) is aborted when the caller goes away: a
   * copy that streams must stop on it.
   */
  async copying<T>(ref: string, requestId: string, signal: AbortSignal, fn: (rootfs: string, row: ContainerRow, signal: AbortSignal) => Promise<T>): Promise<T> {
    const { db, paths, images, exits, freezer } = this.p;
    // An exit being recorded unmounts the root: the copy starts after it, on a root of its own.
    await exits.settled(db.resolve(ref).id);
    const row = db.resolve(ref);
    const layers = await images.layersOf(row, requestId);
    return freezer.whileFrozen(row, () => withRootfs(paths.dir(row.id), layers, (rootfs) => fn(rootfs, row, signal)));
  }

  /** `docker export` has sent the whole root filesystem. */
  exported(row: ContainerRow): void {
    this.p.outbox.publish(containerEvent('export', row));
  }
}
