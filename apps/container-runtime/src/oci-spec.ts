// The OCI runtime's config.json, written from a container's Config and
// HostConfig the way Docker does: Docker's default capabilities, masked and
// read-only kernel paths, /dev as tmpfs with the default device allow-list,
// cgroup limits, and the user resolved in the container's own files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { relInRoot, RootDir } from '@stevedore/archive';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';
import { refused, StevedoreError } from '@stevedore/errors';
import { seccompFor, type SeccompProfile } from './seccomp';

const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const CAP_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
  'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
  'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
  'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
];

/** Every capability this host's bounding set has (a privileged container gets these, not a fixed list). */
export function hostCapabilities(): string[] {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const bnd = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
  return CAP_NAMES.filter((_, i) => (bnd >> BigInt(i)) & 1n).map((n) => `CAP_${n}`);
}

const MASKED = ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Docker's default device rules: deny all, then the usual character devices. */
const DEVICE_RULES = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

/**
 * The most of /etc/passwd or /etc/group read at a start. A user database of
 * tens of thousands of users is a few MiB at most (about 80 bytes a line);
 * the bound keeps an image's oversized file from filling the runtime's memory
 * or holding its event loop (the read is synchronous: 4 MiB takes a few ms).
 */
export const USER_DB_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The entries of the image's /etc/passwd or /etc/group, the file found inside
 * the root (links followed there, never on the host); none when it is
 * missing. A FIFO, a device or a directory there is refused without being
 * opened, and so is a file over the bound: the start fails, saying so.
 */
function readEntries(root: RootDir, file: string): string[][] {
  const content = root.readFile(file, USER_DB_MAX_BYTES);
  if (!content) return [];
  return content.toString('utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/** `user`, `user:group`, `uid` or `uid:gid`, looked up in the container's /etc/passwd and /etc/group (resolved inside its root). */
export function resolveUser(rootfs: string, spec: string): ResolvedUser {
  const [passwd, groups] = RootDir.with(rootfs, (root) => [readEntries(root, 'etc/passwd'), readEntries(root, 'etc/group')]);
  const [userPart, groupPart] = (spec || '0').split(':');
  const entry = /^\d+$/.test(userPart) ? passwd.find((p) => p[2] === userPart) : passwd.find((p) => p[0] === userPart);
  if (!entry && !/^\d+$/.test(userPart)) throw refused(`Unable to find user ${userPart}: no matching entries in passwd file`);
  const uid = entry ? Number(entry[2]) : Number(userPart);
  let gid = entry ? Number(entry[3]) : uid;
  if (groupPart !== undefined && groupPart !== '') {
    const g = /^\d+$/.test(groupPart) ? groups.find((x) => x[2] === groupPart) : groups.find((x) => x[0] === groupPart);
    if (!g && !/^\d+$/.test(groupPart)) throw refused(`Unable to find group ${groupPart}: no matching entries in group file`);
    gid = g ? Number(g[2]) : Number(groupPart);
  }
  // Larger IDs wrap around in the kernel (4294967295 is -1, "unchanged": root's own).
  for (const id of [uid, gid]) if (!Number.isSafeInteger(id) || id > 2147483647) throw refused('uids and gids must be in range 0-2147483647');
  const name = entry?.[0];
  const additionalGids = name ? groups.filter((g) => (g[3] ?? '').split(',').includes(name)).map((g) => Number(g[2])).filter((g) => g !== gid) : [];
  return { uid, gid, additionalGids, home: entry?.[5] || '/' };
}

/**
 * The process's working directory: WorkingDir made absolute and clean, as
 * Docker cleaned it (`path.Clean`, joined to the root), so `..` never climbs
 * above the container's `/`; `/` when unset. The start makes it inside the
 * root when it is missing (makeWorkingDir, at the start).
 */
export function workingDir(config: ContainerConfig): string {
  return path.posix.resolve('/', config.WorkingDir || '/');
}

/**
 * Makes a missing working directory, as Docker 1.0's start did (0755, owned
 * by root), inside the container's root: links on the way are followed
 * there, never on the host. What is there and not a directory fails the
 * start, with Docker's words.
 */
export function makeWorkingDir(rootfs: string, config: ContainerConfig): void {
  const cwd = workingDir(config);
  if (cwd === '/') return;
  RootDir.with(rootfs, (root) => {
    const rel = relInRoot(cwd);
    try {
      const st = root.stat(rel, true);
      if (st?.isDirectory()) return;
      if (st) throw refused(`Cannot mkdir: ${cwd} is not a directory`);
      root.mkdirAll(rel, 0o755);
    } catch (err) {
      if (err instanceof StevedoreError) throw err;
      const e = err as NodeJS.ErrnoException;
      // A file on the way, or a link there leading nowhere inside the root.
      const onTheWay = /^Not a directory: (.*)$/.exec(e.message)?.[1];
      throw refused(onTheWay !== undefined ? `Cannot mkdir: ${cwd}: /${onTheWay} is not a directory` : `Cannot mkdir: ${cwd}: ${e.message}`);
    }
  });
}

export interface SpecInput {
  id: string;
  rootfs: string;
  config: ContainerConfig;
  hostConfig: HostConfig;
  user: ResolvedUser;
  hostname: string;
  /** Files bind-mounted over /etc/hostname, /etc/hosts, /etc/resolv.conf. */
  etcFiles: { hostname: string; hosts: string; resolvConf: string };
  hostCaps: string[];
  /** Volumes and binds, mounted last (over anything of the image's at their paths). */
  volumes?: Array<{ path: string; hostPath: string; rw: boolean }>;
  /** A network namespace made beforehand (the bridge), joined instead of a new one. */
  netnsPath?: string;
  /** Docker's default seccomp profile, applied unless the container is privileged. */
  seccomp: SeccompProfile;
  /** The AppArmor profile loaded at start-up, on a host that has AppArmor; not for privileged containers. */
  appArmorProfile?: string;
}

/** Docker's default environment, with the container's own on top. */
function containerEnv(config: ContainerConfig, hostname: string, home: string): string[] {
  const env = new Map<string, string>();
  env.set('PATH', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  env.set('HOSTNAME', `HOSTNAME=${hostname}`);
  env.set('HOME', `HOME=${home}`);
  if (config.Tty) env.set('TERM', 'TERM=xterm');
  for (const e of config.Env ?? []) {
    const key = e.split('=')[0];
    env.set(key, e);
  }
  return [...env.values()];
}

export function buildSpec(input: SpecInput): object {
  const { config, hostConfig } = input;
  const privileged = Boolean(hostConfig.Privileged);
  const caps = privileged ? input.hostCaps : DEFAULT_CAPABILITIES.filter((c) => input.hostCaps.includes(c));
  const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  const memory = hostConfig.Memory || config.Memory || 0;
  const swapSetting = hostConfig.MemorySwap || config.MemorySwap || 0;
  const cpuShares = hostConfig.CpuShares || config.CpuShares || 0;
  const cpuset = hostConfig.CpusetCpus || config.Cpuset || '';
  const networkMode = hostConfig.NetworkMode || 'default';
  const namespaces: Array<{ type: string; path?: string }> = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (networkMode !== 'host') namespaces.push(input.netnsPath ? { type: 'network', path: input.netnsPath } : { type: 'network' });
  const memoryLimits: Record<string, number> = {};
  if (memory > 0) {
    memoryLimits.limit = memory;
    // Docker: MemorySwap is memory plus swap; 0 means twice the memory, -1 no limit.
    memoryLimits.swap = swapSetting === -1 ? -1 : swapSetting > 0 ? swapSetting : memory * 2;
  }
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: Boolean(config.Tty),
      user: { uid: input.user.uid, gid: input.user.gid, additionalGids: input.user.additionalGids },
      args,
      env: containerEnv(config, input.hostname, input.user.home),
      cwd: workingDir(config),
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: [] },
      noNewPrivileges: false,
      ...(input.appArmorProfile && !privileged ? { apparmorProfile: input.appArmorProfile } : {}),
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    ...(config.Domainname ? { domainname: config.Domainname } : {}),
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'] },
      { destination: '/etc/hostname', type: 'bind', source: input.etcFiles.hostname, options: ['rbind', 'rprivate'] },
      { destination: '/etc/hosts', type: 'bind', source: input.etcFiles.hosts, options: ['rbind', 'rprivate'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: input.etcFiles.resolvConf, options: ['rbind', 'rprivate'] },
      ...(input.volumes ?? []).map((v) => ({ destination: v.path, type: 'bind', source: v.hostPath, options: ['rbind', 'rprivate', v.rw ? 'rw' : 'ro'] })),
    ],
    linux: {
      namespaces,
      cgroupsPath: `/stevedore/${input.id}`,
      resources: {
        devices: privileged ? [{ allow: true, access: 'rwm' }] : DEVICE_RULES,
        ...(Object.keys(memoryLimits).length ? { memory: memoryLimits } : {}),
        ...(cpuShares > 0 || cpuset ? { cpu: { ...(cpuShares > 0 ? { shares: cpuShares } : {}), ...(cpuset ? { cpus: cpuset } : {}) } } : {}),
      },
      ...(privileged ? {} : { maskedPaths: MASKED, readonlyPaths: READONLY, seccomp: seccompFor(input.seccomp, caps) }),
    },
  };
}
