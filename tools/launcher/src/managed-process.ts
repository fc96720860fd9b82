// One supervised child: started with its log file, restarted with back-off
// when it dies or when it fails its health check for too long, stopped with
// SIGTERM then SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { serviceContext } from '@stevedore/service-kit';
import { openLog, type ProcessState } from './layout';

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;
/** A child that ran this long is considered to have recovered: back-off starts over. */
const STABLE_AFTER_MS = 30_000;
const STOP_GRACE_MS = 10_000;
/** How long a process may take to pass its first health check, whatever STEVEDORE_HEALTH_RESTART_AFTER says. */
const STARTUP_GRACE_MS = 120_000;

type Logger = ReturnType<typeof serviceContext>['log'];

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** The child's umask, when it must not be this process's (node's spawn has no such option: a shell sets it, then execs the command). */
  umask?: number;
  /** Descriptors the child inherits as 3, 4, … (the API edge's listening sockets). */
  inheritFds?: number[];
  /** Failing the health check this long in a row gets the child killed and restarted. */
  healthRestartAfterMs: number;
}

export class ManagedProcess {
  private child?: ChildProcess;
  private stopping = false;
  private failures = 0;
  private restartTimer?: NodeJS.Timeout;
  /** Since when the child has failed every probe: its start, or the first failed probe after a good one. */
  private failingSince = 0;
  /** Why this process is killing the child, when it is (its exit is then not a crash). */
  private killReason?: string;
  readonly state: ProcessState;

  constructor(
    private readonly spec: ProcessSpec,
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {
    this.state = { name: spec.name, pid: null, state: 'stopped', restarts: 0, startedAt: null, lastExit: null };
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const log = openLog(this.spec.logFile);
    const [command, args] =
      this.spec.umask === undefined
        ? [this.spec.command, this.spec.args]
        : ['/bin/sh', ['-c', `umask ${this.spec.umask.toString(8).padStart(3, '0')} && exec "$0" "$@"`, this.spec.command, ...this.spec.args]];
    const child = spawn(command, args, { env: this.spec.env, stdio: ['ignore', log, log, ...(this.spec.inheritFds ?? [])] });
    fs.closeSync(log);
    const startedAt = Date.now();
    this.child = child;
    this.failingSince = startedAt;
    this.killReason = undefined;
    Object.assign(this.state, { pid: child.pid ?? null, state: 'starting', startedAt: new Date(startedAt).toISOString() });
    this.onChange();
    child.on('exit', (code, signal) => {
      const how = signal ? `signal ${signal}` : `code ${code}`;
      this.state.lastExit = this.killReason ? `${this.killReason}, ${how}` : how;
      this.state.pid = null;
      this.child = undefined;
      if (this.stopping) {
        this.state.state = 'stopped';
        return this.onChange();
      }
      this.failures = Date.now() - startedAt > STABLE_AFTER_MS ? 1 : this.failures + 1;
      const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** (this.failures - 1));
      this.log.warn({ process: this.spec.name, processPid: child.pid, exit: this.state.lastExit, restartInMs: delay }, 'exited: restarting');
      this.state.state = 'restarting';
      this.onChange();
      this.restartTimer = setTimeout(() => {
        this.state.restarts++;
        this.start();
      }, delay);
    });
  }

  /** A probe's result; one that has failed for healthRestartAfterMs in a row has the child killed, and so restarted. */
  setHealth(healthy: boolean): void {
    if (!this.child || this.stopping || this.killReason) return;
    const now = Date.now();
    if (healthy) this.failingSince = 0;
    else if (!this.failingSince) this.failingSince = now;
    const next = healthy ? 'healthy' : this.state.state === 'starting' ? 'starting' : 'unhealthy';
    if (next !== this.state.state) {
      this.state.state = next;
      this.onChange();
    }
    // Before its first good probe a process is starting: it has a longer while (a runtime adopting many containers).
    const allowed = this.state.state === 'starting' ? Math.max(this.spec.healthRestartAfterMs, STARTUP_GRACE_MS) : this.spec.healthRestartAfterMs;
    if (!healthy && now - this.failingSince >= allowed) {
      const failingMs = now - this.failingSince;
      this.killReason = `killed: no good health check for ${failingMs} ms`;
      this.log.warn(
        { process: this.spec.name, processPid: this.child.pid, failingMs, healthRestartAfterMs: this.spec.healthRestartAfterMs },
        `failed its health check for ${failingMs} ms (STEVEDORE_HEALTH_RESTART_AFTER ${this.spec.healthRestartAfterMs}): killing it to restart it`,
      );
      // As a crash, not as a stop: a stop makes the container runtime stop every container, and every
      // service recovers from a crash at its start (the containers are adopted).
      this.child.kill('SIGKILL');
    }
  }

  stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (!this.child) {
      this.state.state = 'stopped';
      return Promise.resolve();
    }
    return this.terminate(this.child, STOP_GRACE_MS);
  }

  /**
   * SIGTERM, then SIGKILL after the grace. SIGCONT too: a stopped process
   * (SIGSTOP, a debugger gone) would handle neither SIGTERM nor its grace.
   */
  private terminate(child: ChildProcess, graceMs: number): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
      child.kill('SIGCONT');
    });
  }
}
