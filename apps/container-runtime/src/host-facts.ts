// What this host offers containers: the OCI runtime and the kernel's limits.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { OciRuntimeChoice } from '@stevedore/config';

export interface OciRuntime {
  name: 'runc' | 'crun';
  version: string;
}

function runtimeVersion(name: 'runc' | 'crun'): string | undefined {
  try {
    const out = execFileSync(name, ['--version'], { encoding: 'utf8', timeout: 5000 });
    return /version\s+(\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

/**
 * The OCI runtime to use: the one the setting names (it must be installed),
 * or with "auto" the first installed of runc and crun. (Checking that crun
 * accepts this host's cgroup layout comes with the container runtime itself.)
 */
export function chooseOciRuntime(choice: OciRuntimeChoice): OciRuntime {
  const candidates: Array<'runc' | 'crun'> = choice === 'auto' ? ['runc', 'crun'] : [choice];
  for (const name of candidates) {
    const version = runtimeVersion(name);
    if (version) return { name, version };
  }
  throw new Error(`No OCI runtime found (looked for ${candidates.join(', ')}); install runc or crun`);
}

export interface CgroupFacts {
  version: '1' | '2';
  memoryLimit: boolean;
  swapLimit: boolean;
}

export function cgroupFacts(root = '/sys/fs/cgroup'): CgroupFacts {
  if (fs.existsSync(`${root}/cgroup.controllers`)) {
    const controllers = fs.readFileSync(`${root}/cgroup.controllers`, 'utf8');
    const memory = /\bmemory\b/.test(controllers);
    return { version: '2', memoryLimit: memory, swapLimit: memory };
  }
  return {
    version: '1',
    memoryLimit: fs.existsSync(`${root}/memory/memory.limit_in_bytes`),
    swapLimit: fs.existsSync(`${root}/memory/memory.memsw.limit_in_bytes`),
  };
}

export function ipv4Forwarding(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}
