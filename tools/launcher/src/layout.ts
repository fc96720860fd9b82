// Where the launcher keeps its files in the data root, and what it runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StevedoreConfig } from '@stevedore/config';

/** The repository checkout the launcher belongs to. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

export function launcherFiles(config: StevedoreConfig) {
  return {
    pid: path.join(config.runDir, 'supervisor.pid'),
    /** Held (O_EXCL, with the launcher's PID) while `up` starts a stack on this root. */
    upLock: path.join(config.runDir, 'up.lock'),
    state: path.join(config.runDir, 'state.json'),
    supervisorLog: path.join(config.logDir, 'supervisor.log'),
    redisDir: path.join(config.root, 'redis'),
    redisSocket: path.join(config.runDir, 'redis.sock'),
  };
}

/** A process's log file, opened for appending: 0600, like everything else in logs/ (one an older version made wider is tightened). */
export function openLog(file: string): number {
  const fd = fs.openSync(file, 'a', 0o600);
  fs.fchmodSync(fd, 0o600);
  return fd;
}

export function serviceEntry(service: string): string {
  return path.join(REPO_ROOT, 'apps', service, 'dist', 'main.js');
}

/** The module whose `start` runs a service inside the supervisor (STEVEDORE_PROCESSES=one). */
export function serviceModule(service: string): string {
  return path.join(REPO_ROOT, 'apps', service, 'dist', 'service.js');
}

/** The first unix socket the API listens on, as DOCKER_HOST. */
export function dockerHost(config: StevedoreConfig): string {
  return config.hosts.find((h) => h.startsWith('unix://')) ?? config.hosts[0];
}

export interface ProcessState {
  name: string;
  pid: number | null;
  state: 'starting' | 'healthy' | 'unhealthy' | 'restarting' | 'stopped';
  restarts: number;
  startedAt: string | null;
  lastExit: string | null;
}

export interface StackState {
  supervisorPid: number;
  ready: boolean;
  failed?: string;
  dockerHost: string;
  processes: ProcessState[];
  updatedAt: string;
}

/**
 * Whether `pid` is a live process of the stack on `root`: its environment
 * names the root (every process the supervisor starts inherits it), or its
 * command line a path in the root's run directory, so a
 * PID that a dead stack left in a file and the kernel gave to another
 * process since is not taken for one of ours.
 */
export function stackProcess(pid: number | null | undefined, root: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    if (fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`STEVEDORE_ROOT=${root}`)) return true;
    // redis-server writes its title over its environment; the title names its socket in <root>/run.
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(`${path.join(root, 'run')}/`);
  } catch {
    return false;
  }
}

export function pidAlive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
