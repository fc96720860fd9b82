// One supervised child: started with its log file, restarted with back-off
// when it dies, stopped with SIGTERM then SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { openLog, type ProcessState } from './layout';

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;
/** A child that ran this long is considered to have recovered: back-off starts over. */
const STABLE_AFTER_MS = 30_000;
const STOP_GRACE_MS = 10_000;

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** The child's umask, when it must not be this process's (node's spawn has no such option: a shell sets it, then execs the command). */
  umask?: number;
}

export class ManagedProcess {
  private child?: ChildProcess;
  private stopping = false;
  private failures = 0;
  private restartTimer?: NodeJS.Timeout;
  readonly state: ProcessState;

  constructor(
    private readonly spec: ProcessSpec,
    private readonly onChange: () => void,
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
    const child = spawn(command, args, { env: this.spec.env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const startedAt = Date.now();
    this.child = child;
    Object.assign(this.state, { pid: child.pid ?? null, state: 'starting', startedAt: new Date(startedAt).toISOString() });
    this.onChange();
    child.on('exit', (code, signal) => {
      this.state.lastExit = signal ? `signal ${signal}` : `code ${code}`;
      this.state.pid = null;
      this.child = undefined;
      if (this.stopping) {
        this.state.state = 'stopped';
        return this.onChange();
      }
      this.failures = Date.now() - startedAt > STABLE_AFTER_MS ? 1 : this.failures + 1;
      const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** (this.failures - 1));
      this.state.state = 'restarting';
      this.onChange();
      this.restartTimer = setTimeout(() => {
        this.state.restarts++;
        this.start();
      }, delay);
    });
  }

  setHealth(healthy: boolean): void {
    if (!this.child || this.stopping) return;
    const next = healthy ? 'healthy' : this.state.state === 'starting' ? 'starting' : 'unhealthy';
    if (next !== this.state.state) {
      this.state.state = next;
      this.onChange();
    }
  }

  stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) {
      this.state.state = 'stopped';
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
