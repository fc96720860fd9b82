// The runtime's start-up, for the containers it finds: those recorded as
// running whose monitor lives are followed again (the others are recorded as
// exited), starts the runtime's end interrupted are adopted or undone
// (start-recovery.ts), and the bridge is set up again with only the running
// containers on it.
import type { Logger } from '@stevedore/logging';
import type { ContainerNetwork } from './container-network';
import type { ContainerPaths } from './container-paths';
import { containerEvent, type EventOutbox } from './event-outbox';
import type { ExitMonitor } from './exit-monitor';
import type { ContainerFreezer } from './freezer';
import type { OciRuntimeRunner } from './oci-runtime';
import { ShimConnection } from '@stevedore/contracts';
import { StartRecovery } from './start-recovery';
import type { ContainerDb } from './store/container-db';

/** Docker's exit code for a start that failed without one of its own. */
const START_INTERRUPTED_EXIT_CODE = 128;

export interface AdoptionParts {
  db: ContainerDb;
  paths: ContainerPaths;
  runner: OciRuntimeRunner;
  exits: ExitMonitor;
  freezer: ContainerFreezer;
  network: ContainerNetwork;
  outbox: EventOutbox;
  log: Logger;
}

export async function adoptContainers(p: AdoptionParts): Promise<void> {
  for (const row of p.db.all()) {
    if (row.status !== 'running') continue;
    try {
      const monitor = await ShimConnection.connect(p.paths.attachSocket(row.id));
      p.exits.watch(row.id, monitor);
      p.log.info({ id: row.id }, 'adopted a running container');
      await p.freezer.thawInterruptedCopy(row);
    } catch {
      await p.exits.exited(row.id);
      p.log.info({ id: row.id }, 'a container exited while the runtime was away');
    }
  }
  await recoverInterruptedStarts(p);
  await p.network.setUp();
}

/**
 * Starts the runtime's end interrupted: a container whose process runs is
 * adopted, what the others left is undone; then no monitor, OCI runtime
 * state or root filesystem mount is left for a container that does not run.
 */
async function recoverInterruptedStarts(p: AdoptionParts): Promise<void> {
  const recovery = new StartRecovery({ runtime: p.runner.runtime.name, runtimeRoot: p.runner.root, containersRoot: p.paths.root, stateDir: (id) => p.paths.stateDir(id) }, p.log);
  for (const row of p.db.all()) {
    if (row.status === 'running') continue;
    const adopted = await recovery.recover(row.id);
    if (!adopted) continue;
    if (adopted === 'undone') {
      // As for a start that fails while the runtime runs: exited, and `die` for the client waiting for it
      // (today's `docker run --rm` waits for it, after its start failed, before it removes the container).
      p.exits.markExited(row, START_INTERRUPTED_EXIT_CODE, new Date().toISOString());
      continue;
    }
    p.db.markStarted(row.id, adopted.pid, adopted.startedAt);
    p.exits.watch(row.id, adopted.monitor);
    p.log.info({ id: row.id, pid: adopted.pid }, 'adopted a container whose start the runtime\'s end interrupted');
    p.outbox.publish(containerEvent('start', row));
    // Ended meanwhile: recorded with its real exit.
    if (adopted.monitor.socket.destroyed) await p.exits.exited(row.id);
  }
  await recovery.sweep(new Set(p.db.all().filter((r) => r.status === 'running').map((r) => r.id)));
}
