// The two engines a benchmark compares: a Stevedore stack started as the
// README says, and the Docker engine 20.10 from Debian's docker.io on its own
// socket, data root and exec root (never touching another engine).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { bridgeNatRule } from '@stevedore/e2e/dist/harness';
import { send } from './http-client';

export const REPO = path.resolve(__dirname, '..', '..');

export interface Engine {
  name: 'stevedore' | 'docker';
  socket: string;
  version: string;
  /** The engine's processes: Stevedore's services, Redis and monitors; dockerd, containerd and the shims. */
  pids(): number[];
  stop(): Promise<void>;
}

/** Every process: PID → [parent PID, command line]. */
function processTable(): Map<number, [number, string]> {
  const table = new Map<number, [number, string]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      table.set(Number(d), [ppid, fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ')]);
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

/** A process and all its descendants. */
function descendants(root: number): number[] {
  const table = processTable();
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, [ppid]] of table) if (ppid === out[i]) out.push(pid);
  return out;
}

/** Resident memory of processes, in KiB. */
export function rssKiB(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return total;
}

/**
 * The physical memory the processes occupy together: every resident page
 * counted once, however many of them map it (the node binary's code is
 * mapped by every Stevedore process; RSS counts it once per process).
 * Read from /proc/PID/pagemap (root only), mapping by mapping.
 */
export function footprintKiB(pids: number[]): number {
  const frames = new Set<number>();
  for (const pid of pids) {
    let smaps: string;
    let pagemap: number;
    try {
      smaps = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
      pagemap = fs.openSync(`/proc/${pid}/pagemap`, 'r');
    } catch {
      continue; // gone
    }
    try {
      let range: [number, number] | undefined;
      for (const line of smaps.split('\n')) {
        const vma = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
        if (vma) range = [parseInt(vma[1], 16), parseInt(vma[2], 16)];
        const rss = /^Rss:\s+(\d+) kB/.exec(line);
        if (!rss || !range || rss[1] === '0') continue;
        const pages = (range[1] - range[0]) / 4096;
        const entries = Buffer.alloc(pages * 8);
        fs.readSync(pagemap, entries, 0, entries.length, (range[0] / 4096) * 8);
        for (let i = 0; i < entries.length; i += 8) {
          const high = entries.readUInt32LE(i + 4);
          if (high & 0x80000000) frames.add((high & 0x7fffff) * 2 ** 32 + entries.readUInt32LE(i));
        }
      }
    } finally {
      fs.closeSync(pagemap);
    }
  }
  return frames.size * 4;
}

function get(socket: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath: socket, path: urlPath, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function waitForPing(socket: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await get(socket, '/_ping')).status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${socket} did not answer /_ping`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startStevedore(extraEnv: Record<string, string> = {}): Promise<Engine> {
  const root = fs.mkdtempSync('/tmp/sd-bench-');
  const socket = path.join(root, 'api.sock');
  const env: NodeJS.ProcessEnv = { ...process.env, STEVEDORE_ROOT: root, STEVEDORE_HOST: `unix://${socket}`, STEVEDORE_LOG_LEVEL: 'warn', ...extraEnv };
  delete env.REDIS_URL;
  // The runtime makes its bridge's NAT rule and keeps it after `down`; the benchmark takes away one it made.
  const natRule = bridgeNatRule(env);
  const hadNatRule = spawnSync('iptables', ['-w', '-t', 'nat', '-C', ...natRule], { stdio: 'ignore' }).status === 0;
  execFileSync(path.join(REPO, 'stevedore'), ['up'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const version = JSON.parse((await get(socket, '/version')).body).Version as string;
  return {
    name: 'stevedore',
    socket,
    version: `Stevedore ${version}`,
    pids: () => {
      const supervisor = (JSON.parse(fs.readFileSync(path.join(root, 'run', 'state.json'), 'utf8')) as { supervisorPid: number }).supervisorPid;
      // The supervisor and what it started (services, Redis), and the monitors (detached, named by the data root).
      const family = new Set(descendants(supervisor));
      for (const [pid, [, cmd]] of processTable()) if (cmd.includes(root)) family.add(pid);
      return [...family];
    },
    stop: async () => {
      execFileSync(path.join(REPO, 'stevedore'), ['down'], { env, stdio: 'ignore' });
      if (!hadNatRule) spawnSync('iptables', ['-w', '-t', 'nat', '-D', ...natRule], { stdio: 'ignore' });
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A busybox root filesystem tar (Debian's static busybox and the applets named) made in `dir`. */
export function busyboxTar(dir: string, applets: string[]): string {
  const rootfs = path.join(dir, 'busybox-rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  for (const a of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  const tarFile = path.join(dir, 'busybox.tar');
  execFileSync('tar', ['-C', rootfs, '-cf', tarFile, '.']);
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tarFile;
}

/** A bridge of the benchmark's own for the Docker engine (it is given an existing one); the function deletes it. */
export function makeBridge(name: string, address: string): () => void {
  execFileSync('ip', ['link', 'add', name, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', address, 'dev', name]);
  execFileSync('ip', ['link', 'set', name, 'up']);
  return () => void spawnSync('ip', ['link', 'delete', name]);
}

/**
 * The Docker engine on a socket, data root and exec root of its own. Its
 * containers get no bridge unless one is named: an existing bridge of the
 * benchmark's (`--bridge`), without iptables (published ports through its
 * userland proxy, as it serves 127.0.0.1 anyway).
 */
export async function startDocker(options: { bridge?: string } = {}): Promise<Engine> {
  if (!fs.existsSync('/usr/sbin/dockerd')) {
    process.stderr.write('bench: installing the Docker engine (Debian docker.io) for the comparison\n');
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'docker.io'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: 'inherit',
    });
  }
  const dir = fs.mkdtempSync('/tmp/ref-bench-');
  const socket = path.join(dir, 'docker.sock');
  const child: ChildProcess = spawn(
    '/usr/sbin/dockerd',
    [
      '--host', `unix://${socket}`,
      '--data-root', path.join(dir, 'root'),
      '--exec-root', path.join(dir, 'exec'),
      '--pidfile', path.join(dir, 'docker.pid'),
      '--iptables=false',
      `--bridge=${options.bridge ?? 'none'}`,
      '--containerd-namespace', `bench-${process.pid}`,
      '--log-level', 'error',
    ],
    { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'dockerd.log'), 'a')] },
  );
  await waitForPing(socket, 60_000);
  const version = JSON.parse((await get(socket, '/v1.12/version')).body).Version as string;
  return {
    name: 'docker',
    socket,
    version: `Docker ${version}`,
    pids: () => descendants(child.pid!),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      try {
        execFileSync('umount', ['-R', path.join(dir, 'root')], { stdio: 'ignore' });
      } catch {
        // nothing mounted
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Imports a busybox tar as `busybox:latest` into an engine. */
export async function importBusybox(e: Engine, tarFile: string): Promise<void> {
  const r = await send(e.socket, 'POST', '/v1.12/images/create?fromSrc=-&repo=busybox&tag=latest', { file: tarFile });
  if (r.status !== 200) throw new Error(`${e.name} import: ${r.status} ${r.body}`);
}
