// Starting a container's monitor (native/shim.c) and running the OCI
// runtime; its socket's frames are read by ShimConnection (@stevedore/contracts).
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { refused } from '@stevedore/errors';

export const SHIM_BINARY = path.resolve(__dirname, '..', 'native', 'build', 'stevedore-shim');

/** native/spawn.c: posix_spawn and waitpid (node's own spawn forks the whole runtime: 5-7 ms a monitor on some machines). */
interface Spawner {
  /** Runs `file` with `args` (args[0] first), its stdout a pipe: [pid, the pipe's read end]. */
  spawn(file: string, args: string[]): [number, number];
  /** The child's exit status once it ended, -1 while it runs. */
  reap(pid: number): number;
}
let spawner: Spawner | undefined;
/** The module, loaded at the first start of a monitor (a broken build fails the starts, not the runtime's start-up). */
function native(): Spawner {
  if (!spawner) {
    const loaded = { exports: {} as Spawner };
    process.dlopen(loaded, path.resolve(__dirname, '..', 'native', 'build', 'spawn.node'));
    spawner = loaded.exports;
  }
  return spawner;
}

/** How long a monitor may take to report (a container's, while the OCI runtime creates it). */
const REPORT_WITHIN_MS = 60_000;

/**
 * Runs a program that writes a short report and exits (the monitor's first
 * process leaves once the monitor runs): its stdout and its exit status. The
 * child is reaped once its pipe has closed (it may take a moment more to end);
 * one that has not closed it within `withinMs` is killed, and its pipe closed.
 */
export function runForReport(file: string, args: string[], withinMs = REPORT_WITHIN_MS): Promise<{ stdout: string; code: number; pid: number }> {
  let pid: number;
  let fd: number;
  try {
    [pid, fd] = native().spawn(file, [file, ...args]);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve) => {
    const out = new net.Socket({ fd, readable: true, writable: false });
    const chunks: Buffer[] = [];
    const killer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Ended meanwhile.
      }
      out.destroy();
    }, withinMs);
    out.on('data', (c: Buffer) => chunks.push(c));
    out.on('error', () => out.destroy());
    out.once('close', () => {
      const reaped = (waitMs: number): void => {
        let code: number;
        try {
          code = native().reap(pid);
        } catch {
          code = 255; // reaped by someone else: its status is unknown
        }
        if (code < 0) {
          setTimeout(() => reaped(Math.min(waitMs * 2, 100)), waitMs);
          return;
        }
        clearTimeout(killer);
        resolve({ stdout: Buffer.concat(chunks).toString('utf8'), code, pid });
      };
      reaped(1);
    });
  });
}

interface MonitorOptions {
  id: string;
  state: string;
  runtime: string;
  runtimeRoot: string;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
}

/** A container's monitor: it creates the container from its bundle and writes its log. */
export interface ShimOptions extends MonitorOptions {
  bundle: string;
  log: string;
  logMaxSize: number;
  logMaxFiles: number;
}

/** An exec's monitor: it runs the process described by `exec` (an OCI process JSON file) in the running container `id` at START. */
export interface ExecShimOptions extends MonitorOptions {
  exec: string;
}

/** Starts the monitor; resolves with the container's pid once the runtime has created it (0 for an exec, which starts at START). */
export function spawnShim(o: ShimOptions | ExecShimOptions): Promise<number> {
  const args = ['--id', o.id, '--state', o.state, '--runtime', o.runtime, '--runtime-root', o.runtimeRoot];
  if ('exec' in o) args.push('--exec', o.exec);
  else args.push('--bundle', o.bundle, '--log', o.log, '--log-max-size', String(o.logMaxSize), '--log-max-files', String(o.logMaxFiles));
  if (o.tty) args.push('--tty');
  if (o.stdin) args.push('--stdin');
  if (o.stdinOnce) args.push('--stdin-once');
  return runForReport(SHIM_BINARY, args).then(({ stdout, code }) => {
    const line = stdout.trim();
    if (line.startsWith('ok ')) return Number(line.slice(3));
    throw refused(line.startsWith('error ') ? line.slice(6) : `the container monitor failed: ${line || `exit status ${code}`}`);
  }, (err: NodeJS.ErrnoException) => {
    // Named by its code only: the words of ENOENT would read as the container's command not found.
    throw refused(`the container monitor could not be started: ${err.code ?? err.message}`);
  });
}

/** Runs the OCI runtime with the stack's own state root. */
export function runtimeCommand(runtime: string, root: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(runtime, ['--root', root, ...args], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(refused(stderr.trim() || err.message)) : resolve(stdout)));
  });
}
