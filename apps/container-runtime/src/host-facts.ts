// What this host offers containers: the OCI runtime and the kernel's limits.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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

/** Runs a trivial container with the runtime; returns its error output, or '' when it worked. */
function probe(name: 'runc' | 'crun'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stevedore-probe-'));
  try {
    for (const d of ['dev', 'proc', 'sys', 'tmp', 'etc']) fs.mkdirSync(path.join(dir, 'rootfs', d), { recursive: true });
    fs.copyFileSync(PROBE_BINARY, path.join(dir, 'rootfs', 'busybox'));
    fs.chmodSync(path.join(dir, 'rootfs', 'busybox'), 0o755);
    const spec = {
      ociVersion: '1.0.2',
      process: { args: ['/busybox', 'true'], cwd: '/', user: { uid: 0, gid: 0 }, env: [] },
      root: { path: path.join(dir, 'rootfs') },
      mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network' }] },
    };
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
    execFileSync(name, ['--root', path.join(dir, 'state'), 'run', '--bundle', dir, `probe-${process.pid}`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    return '';
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim() || 'failed';
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * crun refuses a host whose cgroup v2 hierarchy still holds a controller
 * while v1 hierarchies are mounted (hybrid mode); giving each such
 * controller a v1 hierarchy of its own makes the host acceptable.
 */
function mountStrayControllers(root = '/sys/fs/cgroup'): string[] {
  const unified = path.join(root, 'unified', 'cgroup.controllers');
  if (!fs.existsSync(unified)) return [];
  const mounted: string[] = [];
  for (const controller of fs.readFileSync(unified, 'utf8').trim().split(/\s+/).filter(Boolean)) {
    const target = path.join(root, controller);
    try {
      fs.mkdirSync(target, { recursive: true });
      execFileSync('mount', ['-t', 'cgroup', '-o', controller, 'cgroup', target], { stdio: 'ignore' });
      mounted.push(controller);
    } catch {
      // left as it is; the probe will tell
    }
  }
  return mounted;
}

const PROBE_BINARY = '/bin/busybox';

/**
 * The OCI runtime to use. A setting names one (it must work here); "auto"
 * takes crun when it runs a container on this host (it starts containers
 * several times faster), else runc. Every candidate is tried for real.
 */
export function chooseOciRuntime(choice: OciRuntimeChoice, log: (msg: string) => void = () => undefined): OciRuntime {
  const candidates: Array<'runc' | 'crun'> = choice === 'auto' ? ['crun', 'runc'] : [choice];
  const reasons: string[] = [];
  for (const name of candidates) {
    const version = runtimeVersion(name);
    if (!version) {
      reasons.push(`${name}: not installed`);
      continue;
    }
    if (!fs.existsSync(PROBE_BINARY)) return { name, version }; // nothing to probe with: trust the choice
    let failure = probe(name);
    if (failure && /hybrid mode/.test(failure)) {
      const mounted = mountStrayControllers();
      if (mounted.length) log(`mounted cgroup v1 hierarchies for ${mounted.join(', ')} so that ${name} accepts this host`);
      failure = probe(name);
    }
    if (!failure) return { name, version };
    reasons.push(`${name}: ${failure.split('\n').pop()}`);
  }
  throw new Error(`No OCI runtime works on this host (${reasons.join('; ')})`);
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

/** Turns IPv4 forwarding on (when it cannot, create's answers say it is off). */
export function enableIpv4Forwarding(log: { warn(o: object, msg: string): void }): void {
  if (ipv4Forwarding()) return;
  try {
    fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  } catch (err) {
    log.warn({ err }, 'IPv4 forwarding is off and could not be turned on: bridged containers cannot reach beyond the host');
  }
}

export function ipv4Forwarding(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}
