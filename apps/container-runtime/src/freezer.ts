// A container's freezer cgroup, which two parties change: its user (pause,
// unpause) and the copies of its files (cp, archive, export, diff, commit),
// which run with every process of a running container frozen. Changes go one
// at a time per container. Starts and copies exclude each other: a copy of a
// stopped container walks its files by name, unfrozen, and none of its
// processes may run meanwhile (they could swap a directory for a link to `/`
// under the walk).
import * as fs from 'node:fs';
import { asStevedoreError, refused } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import type { ContainerPaths } from './container-paths';
import type { OciRuntimeRunner } from './oci-runtime';
import type { ContainerDb, ContainerRow } from './store/container-db';

export class ContainerFreezer {
  /** Copies in or out of containers in progress, by container; `frozen`: the container is frozen while they last (it was running). */
  private readonly copies = new Map<string, { count: number; frozen: boolean }>();
  /** Containers being started: no copy begins meanwhile. */
  private readonly starting = new Set<string>();
  /** Changes of a container's freezer, one at a time per container. */
  private readonly turns = new Map<string, Promise<void>>();

  constructor(
    private readonly db: ContainerDb,
    private readonly paths: ContainerPaths,
    private readonly runner: OciRuntimeRunner,
    private readonly log: Logger,
  ) {}

  /** A start begins: refused while a copy of the container's files is in progress. */
  beginStart(id: string): void {
    if (this.copies.has(id)) throw refused(`Cannot start container ${id}: a copy of its files is in progress`);
    this.starting.add(id);
  }

  endStart(id: string): void {
    this.starting.delete(id);
  }

  isStarting(id: string): boolean {
    return this.starting.has(id);
  }

  /** Whether copies in progress hold the container frozen (it was running when they began). */
  frozenForCopy(id: string): boolean {
    return Boolean(this.copies.get(id)?.frozen);
  }

  /** Resolves once no copy is in progress, or after `ms` (shutdown). */
  async copiesEnded(ms: number): Promise<void> {
    for (const t = Date.now(); this.copies.size && Date.now() - t < ms; ) await new Promise((r) => setTimeout(r, 50));
  }

  /**
   * Pauses or unpauses a running container for its user. While copies hold
   * it frozen, only the record changes, and the last copy's end leaves it so
   * (thawed unless paused).
   */
  setPaused(row: ContainerRow, pause: boolean, ref: string): Promise<void> {
    const verb = pause ? 'pause' : 'unpause';
    return this.turn(row.id, async () => {
      if (this.frozenForCopy(row.id)) {
        if (!pause) fs.writeFileSync(this.paths.copyFreezeMarker(row.id), '');
      } else {
        await (pause ? this.runner.pause(row.id) : this.runner.resume(row.id)).catch((err) => {
          throw refused(`Cannot ${verb} container ${ref}: ${asStevedoreError(err).message}`);
        });
      }
      this.db.setPaused(row.id, pause);
    });
  }

  /** Runs `fn` with a running container frozen, as copies are: for what walks its files by name (copies, diff, commit). */
  async whileFrozen<T>(row: ContainerRow, fn: () => Promise<T>): Promise<T> {
    await this.freezeForCopy(row.id);
    try {
      return await fn();
    } finally {
      await this.thawAfterCopy(row.id);
    }
  }

  /** Start-up: a container a copy froze when the runtime went away is thawed, unless its user paused it. */
  async thawInterruptedCopy(row: ContainerRow): Promise<void> {
    const marker = this.paths.copyFreezeMarker(row.id);
    if (!fs.existsSync(marker)) return;
    if (!row.paused) await this.runner.resume(row.id).catch((err) => this.log.warn({ err, id: row.id }, 'thawing after an interrupted copy failed'));
    fs.rmSync(marker, { force: true });
  }

  /** One more copy of a container: the first one freezes it if it is running (a paused one is frozen already). */
  private freezeForCopy(id: string): Promise<void> {
    return this.turn(id, async () => {
      if (this.starting.has(id)) throw refused(`Cannot copy: container ${id} is starting`);
      const held = this.copies.get(id);
      const row = this.db.get(id);
      const running = row?.status === 'running';
      // (A container that started during a copy of it stopped is frozen by the next one.)
      if (running && !row.paused && !held?.frozen) {
        const marker = this.paths.copyFreezeMarker(id);
        fs.writeFileSync(marker, '');
        await this.runner.pause(id).catch((err) => {
          fs.rmSync(marker, { force: true });
          throw refused(`Cannot copy: pausing container ${id} failed: ${asStevedoreError(err).message}`);
        });
      }
      if (held) {
        held.count++;
        held.frozen ||= running;
      } else this.copies.set(id, { count: 1, frozen: running });
    });
  }

  /** One copy fewer: after the last one the container is thawed, unless it is paused (or gone). */
  private thawAfterCopy(id: string): Promise<void> {
    return this.turn(id, async () => {
      const held = this.copies.get(id);
      if (!held || --held.count > 0) return;
      this.copies.delete(id);
      const row = this.db.get(id);
      if (held.frozen && row?.status === 'running' && !row.paused) {
        await this.runner.resume(id).catch((err) => this.log.warn({ err, id }, 'thawing a container after a copy failed'));
      }
      fs.rmSync(this.paths.copyFreezeMarker(id), { force: true });
    });
  }

  /** Runs `fn` once the container's earlier freezer changes are done, and before its later ones. */
  private async turn<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.turns.get(id) ?? Promise.resolve();
    const mine = before.then(fn);
    const turn = mine.then(
      () => undefined,
      () => undefined,
    );
    this.turns.set(id, turn);
    try {
      return await mine;
    } finally {
      if (this.turns.get(id) === turn) this.turns.delete(id);
    }
  }
}
