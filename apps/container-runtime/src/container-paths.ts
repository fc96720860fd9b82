// Where the runtime keeps containers: a directory per container under the
// data root (its bundle, layers, log and the files written into it), each
// monitor's state directory, the OCI runtime's state root, data volumes, and
// the directories of removed containers waiting for their deletion.
import * as path from 'node:path';
import { removeTree } from '@stevedore/archive';
import { shortRunDir } from '@stevedore/config';
import type { Logger } from '@stevedore/logging';
import { privateDir } from '@stevedore/service-kit';

export class ContainerPaths {
  /** `<root>/containers`: a directory per container, and the records' database. */
  readonly root: string;
  /** Where a removed container's directory waits for its deletion. */
  readonly trash: string;
  /** Data volumes, one directory each. */
  readonly volumes: string;
  /** The OCI runtime's state root (this stack's own). */
  readonly runtimeRoot: string;
  /** Bridge networking's state (host-local's address allocations). */
  readonly network: string;

  constructor(
    private readonly dataRoot: string,
    private readonly runDir: string,
  ) {
    this.root = path.join(dataRoot, 'containers');
    this.trash = path.join(dataRoot, 'containers-removed');
    this.volumes = path.join(dataRoot, 'volumes');
    this.runtimeRoot = path.join(runDir, 'runtime');
    this.network = path.join(dataRoot, 'network');
  }

  /**
   * Start-up: the directories exist, root's alone, and what removals a stop
   * interrupted left is deleted.
   */
  prepare(log: Logger): void {
    // Root's alone: a container's writable layer keeps what its processes made (setuid files, device nodes),
    // its volumes their modes; 0700 parents keep other users of the host away from all of it.
    privateDir(this.root);
    privateDir(this.runtimeRoot);
    privateDir(this.volumes);
    privateDir(this.network);
    try {
      removeTree(this.trash);
    } catch (err) {
      // What cannot go now is tried again at the next start; the runtime serves meanwhile.
      log.warn({ err }, 'emptying the removed containers\' directory failed');
    }
    privateDir(this.trash);
  }

  get database(): string {
    return path.join(this.root, 'containers.db');
  }

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** The json-file log; rotated files are `json.log.1` and up. */
  logFile(id: string): string {
    return path.join(this.dir(id), 'json.log');
  }

  /** The monitor's state: short, since the attach socket's path must fit a unix socket address. */
  stateDir(id: string): string {
    return path.join(this.short('s'), id.slice(0, 12));
  }

  /** A container's execs: a directory each, named by the exec ID's digits after the container's 16. */
  execsDir(containerId: string): string {
    return path.join(this.short('x', 'e'.repeat(16)), containerId.slice(0, 12));
  }

  /** An exec's record, and its monitor's state (its sockets, pid and exit). */
  execDir(execId: string): string {
    return path.join(this.execsDir(execId.slice(0, 12)), execId.slice(16, 32));
  }

  /**
   * `<run dir>/<kind>`, or its place under /run when a socket below it, in
   * a directory `deeper` further down, would have a path too long.
   */
  private short(kind: string, deeper = ''): string {
    const preferred = path.join(this.runDir, kind);
    if (path.join(preferred, 'c'.repeat(12), deeper, 'console.sock').length < 100) return preferred;
    return path.join(shortRunDir(this.dataRoot), kind);
  }

  /** The monitor's socket: output, stdin, resize, and its close when the container has exited. */
  attachSocket(id: string): string {
    return path.join(this.stateDir(id), 'attach.sock');
  }

  /** Written by the monitor when the container's process ends: its exit code and time. */
  exitFile(id: string): string {
    return path.join(this.stateDir(id), 'exit.json');
  }

  /** Says that a copy froze the container (not its user): a runtime restarted after a crash thaws it. */
  copyFreezeMarker(id: string): string {
    return path.join(this.stateDir(id), 'frozen-for-copy');
  }
}
