// The runtime's start after it was killed outright: what the starts it was
// in the middle of left behind. A start mounts the root filesystem, puts the
// container on the bridge, has the monitor create the container, sends it
// START, and only then records it running; killed anywhere in between, the
// runtime leaves a container whose record does not say running but whose
// mount, monitor, OCI runtime state or process may be there. At the next
// start each is either adopted (its process runs: recorded running with its
// pid, followed again) or undone (monitor and OCI runtime state gone, root
// filesystem unmounted; its record keeps the state it had, created or
// exited). The bridge's reconciliation, which follows, releases the network
// namespaces and addresses of every container not running.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '@stevedore/logging';
import { isMounted, rootfsPaths, unmountRootfs } from './rootfs';
import { ShimConnection } from '@stevedore/contracts';
import { runtimeCommand, SHIM_BINARY } from './shim';

export interface RecoveryPaths {
  /** The OCI runtime's binary and its state root (this stack's own). */
  runtime: string;
  runtimeRoot: string;
  /** Where containers' directories are (`<root>/containers`). */
  containersRoot: string;
  /** A container's monitor state directory. */
  stateDir(id: string): string;
}

export interface Adopted {
  monitor: ShimConnection;
  pid: number;
  startedAt: string;
}

const CONTAINER_ID = /^[0-9a-f]{64}$/;

export class StartRecovery {
  /** Monitor processes of this stack (and the launchers of ones being made), by container, as found at start-up. */
  private readonly monitors: Map<string, number[]>;

  constructor(
    private readonly o: RecoveryPaths,
    private readonly log: Logger,
  ) {
    this.monitors = monitorProcesses(o.runtimeRoot);
  }

  /**
   * A container whose record does not say running: adopted when a start the
   * runtime was killed in left its process running (the caller records it and
   * follows `monitor`), otherwise everything such a start left is undone
   * ('undone': the caller records the failed start, as a start that fails
   * while the runtime runs is recorded).
   */
  async recover(id: string): Promise<Adopted | 'undone' | undefined> {
    const state = this.o.stateDir(id);
    const traces = fs.existsSync(state) || fs.existsSync(path.join(this.o.runtimeRoot, id)) || this.monitors.has(id);
    if (!traces) return undefined;
    const monitor = await ShimConnection.connect(path.join(state, 'attach.sock')).catch(() => undefined);
    if (monitor) {
      const oci = await this.ociState(id);
      // Sent START (or past it): the container's process runs. A container only created, never
      // started, is undone: the start that made it failed for its client.
      if (oci?.status === 'running' && oci.pid > 0) return { monitor, pid: oci.pid, startedAt: oci.created || new Date().toISOString() };
      monitor.close();
    }
    const dir = path.join(this.o.containersRoot, id);
    const ended = await this.end(id);
    const left = ended || Boolean(monitor) || isMounted(rootfsPaths(dir).merged);
    await unmountRootfs(dir);
    // (The state directory of a start that failed as usual stays until the next start: it goes too.)
    fs.rmSync(state, { recursive: true, force: true });
    if (!left) return undefined;
    this.log.info({ id }, 'undid a start interrupted by the runtime\'s end');
    return 'undone';
  }

  /**
   * After every record was recovered: monitors and OCI runtime states of
   * containers that do not run (removed, or unknown) are ended, and every
   * root filesystem mounted for a container that does not run is unmounted
   * (a copy or export the runtime's end interrupted held it).
   */
  async sweep(running: Set<string>): Promise<void> {
    const inRuntime = fs.existsSync(this.o.runtimeRoot) ? fs.readdirSync(this.o.runtimeRoot).filter((n) => CONTAINER_ID.test(n)) : [];
    for (const id of new Set([...this.monitors.keys(), ...inRuntime])) if (!running.has(id)) await this.end(id);
    for (const id of mountedRootfs(this.o.containersRoot)) {
      if (running.has(id)) continue;
      await unmountRootfs(path.join(this.o.containersRoot, id));
      this.log.info({ id }, 'unmounted the root filesystem of a container that does not run');
    }
  }

  /** `state` of the OCI runtime: undefined when it does not know the container. */
  private async ociState(id: string): Promise<{ status: string; pid: number; created: string } | undefined> {
    try {
      return JSON.parse(await runtimeCommand(this.o.runtime, this.o.runtimeRoot, ['state', id]));
    } catch {
      return undefined;
    }
  }

  /**
   * The container's processes, its monitor and its OCI runtime state gone.
   * The monitor leaves by itself once its container is deleted (it records
   * the exit and deletes it again); one that does not is killed. False when
   * there was nothing to end.
   */
  private async end(id: string): Promise<boolean> {
    const deleteState = async () => {
      if (!fs.existsSync(path.join(this.o.runtimeRoot, id))) return false;
      await runtimeCommand(this.o.runtime, this.o.runtimeRoot, ['delete', '--force', id]).catch((err) => this.log.warn({ err, id }, 'deleting a container from the OCI runtime failed'));
      return true;
    };
    const inRuntime = await deleteState();
    const pids = this.monitors.get(id) ?? [];
    if (!inRuntime && pids.length === 0) return false;
    this.monitors.delete(id);
    if (!(await gone(pids, id, 3000))) {
      for (const pid of pids) {
        try {
          if (isMonitorOf(pid, id)) process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      await gone(pids, id, 2000);
    }
    // A monitor killed half-way may have left the state (or made it meanwhile).
    await deleteState();
    this.log.info({ id, monitors: pids }, 'ended the monitor and OCI runtime state of a container that does not run');
    return true;
  }
}

function cmdline(pid: number): string[] | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
}

/** The container a monitor process is for, when it is one of this stack's. */
function monitorOf(argv: string[] | undefined, runtimeRoot: string): string | undefined {
  if (!argv || argv[0] !== SHIM_BINARY) return undefined;
  const root = argv.indexOf('--runtime-root');
  const id = argv.indexOf('--id');
  return root > 0 && argv[root + 1] === runtimeRoot && id > 0 ? argv[id + 1] : undefined;
}

/** Processes of the monitor binary whose runtime root is this stack's, by container. */
function monitorProcesses(runtimeRoot: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const id = monitorOf(cmdline(Number(entry)), runtimeRoot);
    if (id) out.set(id, [...(out.get(id) ?? []), Number(entry)]);
  }
  return out;
}

/** Still the monitor of `id` (not a process that took its PID since). */
function isMonitorOf(pid: number, id: string): boolean {
  const argv = cmdline(pid);
  return Boolean(argv && argv[0] === SHIM_BINARY && argv[argv.indexOf('--id') + 1] === id);
}

/** Waits until none of `pids` is a monitor of `id` any more (a zombie has no command line); false when one still is after `ms`. */
async function gone(pids: number[], id: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some((pid) => isMonitorOf(pid, id))) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** The containers whose root filesystem is mounted, from the mount table. */
function mountedRootfs(containersRoot: string): string[] {
  const ids: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const at = line.split(' ')[4];
    if (!at || path.dirname(path.dirname(at)) !== containersRoot) continue;
    const id = path.basename(path.dirname(at));
    if (CONTAINER_ID.test(id) && rootfsPaths(path.join(containersRoot, id)).merged === at) ids.push(id);
  }
  return ids;
}
