// Where the launcher keeps its files in the data root, and what it runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StevedoreConfig } from '@stevedore/config';

/** The repository checkout the launcher belongs to. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

export function launcherFiles(config: StevedoreConfig) {
  return {
    pid: path.join(config.runDir, 'supervisor.pid'),
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

export function pidAlive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
