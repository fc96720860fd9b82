// The OCI runtime (runc or crun) as the runtime drives a container once its
// monitor has created it: signals, the freezer, its processes, its deletion.
// Always with this stack's own state root.
import type { OciRuntime } from './host-facts';
import { runtimeCommand } from './shim';

export class OciRuntimeRunner {
  constructor(
    readonly runtime: OciRuntime,
    /** The runtime's state root. */
    readonly root: string,
  ) {}

  async kill(id: string, signal: number): Promise<void> {
    await runtimeCommand(this.runtime.name, this.root, ['kill', id, String(signal)]);
  }

  /** Freezes every process of the container. */
  async pause(id: string): Promise<void> {
    await runtimeCommand(this.runtime.name, this.root, ['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await runtimeCommand(this.runtime.name, this.root, ['resume', id]);
  }

  /** Deletes the container's state, killing what still runs of it. */
  async forceDelete(id: string): Promise<void> {
    await runtimeCommand(this.runtime.name, this.root, ['delete', '--force', id]);
  }

  /** The host's pids of the container's processes. */
  async pids(id: string): Promise<number[]> {
    return JSON.parse(await runtimeCommand(this.runtime.name, this.root, ['ps', '--format', 'json', id])) as number[];
  }
}
