// Starting a container's monitor (native/shim.c) and running the OCI
// runtime; its socket's frames are read by ShimConnection (@stevedore/contracts).
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { refused } from '@stevedore/errors';

export const SHIM_BINARY = path.resolve(__dirname, '..', 'native', 'build', 'stevedore-shim');

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
  return new Promise((resolve, reject) => {
    execFile(SHIM_BINARY, args, { timeout: 60_000 }, (err, stdout) => {
      const line = stdout.trim();
      if (line.startsWith('ok ')) return resolve(Number(line.slice(3)));
      reject(refused(line.startsWith('error ') ? line.slice(6) : `the container monitor failed: ${err?.message ?? line}`));
    });
  });
}

/** Runs the OCI runtime with the stack's own state root. */
export function runtimeCommand(runtime: string, root: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(runtime, ['--root', root, ...args], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(refused(stderr.trim() || err.message)) : resolve(stdout)));
  });
}
