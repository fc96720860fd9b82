// docker stats: a container's resource use, read from its cgroup (v1 or v2)
// and from the network devices of its namespace, in the JSON of today's
// engines (GET /containers/(id)/stats). Each sample carries the one before it
// as `precpu_stats`, from which clients compute the CPU share.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** USER_HZ: the unit of /proc/stat and cpuacct.stat. */
const TICK_NS = 10_000_000;

interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: number;
}

interface NetworkStats {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

export interface StatsSample {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: Record<string, BlkioEntry[] | null>;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number>; failcnt?: number; limit?: number };
  name: string;
  id: string;
  networks?: Record<string, NetworkStats>;
}

/** Where a container's stats are read: the cgroup filesystem, /proc, and the host's facts. */
export interface StatsSources {
  cgroupRoot: string;
  procRoot: string;
  cpus: number;
  memoryBytes: number;
}

const HOST_SOURCES: StatsSources = { cgroupRoot: '/sys/fs/cgroup', procRoot: '/proc', cpus: os.cpus().length, memoryBytes: os.totalmem() };

const ZERO_TIME = '0001-01-01T00:00:00Z';

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function num(file: string): number | undefined {
  const text = read(file)?.trim();
  if (text === undefined || text === '' || text === 'max') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** `key value` lines (memory.stat, cpu.stat, cpuacct.stat). */
function keyValues(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (read(file) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

function emptyCpu(): CpuStats {
  return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
}

/** What a stopped container answers: names and zeros, as today's engines send it. */
export function emptySample(name: string, id: string): StatsSample {
  return {
    read: ZERO_TIME, preread: ZERO_TIME, pids_stats: {}, blkio_stats: blkio(null, null), num_procs: 0, storage_stats: {},
    cpu_stats: emptyCpu(), precpu_stats: emptyCpu(), memory_stats: {}, name, id,
  };
}

function blkio(bytes: BlkioEntry[] | null, ops: BlkioEntry[] | null): Record<string, BlkioEntry[] | null> {
  return {
    io_service_bytes_recursive: bytes, io_serviced_recursive: ops, io_queue_recursive: null, io_service_time_recursive: null,
    io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
  };
}

/** The host's CPU time in nanoseconds (/proc/stat's first line). */
function systemCpu(procRoot: string): number | undefined {
  const line = read(path.join(procRoot, 'stat'))?.split('\n')[0];
  if (!line?.startsWith('cpu ')) return undefined;
  return line.trim().split(/\s+/).slice(1, 9).reduce((sum, v) => sum + Number(v), 0) * TICK_NS;
}

/** The network devices of the namespace `pid` is in, loopback aside. */
function networks(procRoot: string, pid: number): Record<string, NetworkStats> | undefined {
  const text = read(path.join(procRoot, String(pid), 'net', 'dev'));
  if (!text) return undefined;
  const out: Record<string, NetworkStats> = {};
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    out[m[1]] = { rx_bytes: f[0], rx_packets: f[1], rx_errors: f[2], rx_dropped: f[3], tx_bytes: f[8], tx_packets: f[9], tx_errors: f[10], tx_dropped: f[11] };
  }
  return Object.keys(out).length ? out : undefined;
}

/** `8:0 Read 4096` lines (cgroup v1 blkio). */
function blkioV1(file: string): BlkioEntry[] | null {
  const entries: BlkioEntry[] = [];
  for (const line of (read(file) ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (\S+) (\d+)$/.exec(line.trim());
    if (m) entries.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3], value: Number(m[4]) });
  }
  return entries.length ? entries : null;
}

/** io.stat (cgroup v2): `8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`, as today's engines map it. */
function ioV2(file: string): { bytes: BlkioEntry[] | null; ops: BlkioEntry[] | null } {
  const bytes: BlkioEntry[] = [];
  const ops: BlkioEntry[] = [];
  for (const line of (read(file) ?? '').split('\n')) {
    const [dev, ...fields] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    const v = Object.fromEntries(fields.map((f) => f.split('=')).map(([k, n]) => [k, Number(n)]));
    const major = Number(m[1]);
    const minor = Number(m[2]);
    bytes.push({ major, minor, op: 'read', value: v.rbytes ?? 0 }, { major, minor, op: 'write', value: v.wbytes ?? 0 });
    ops.push({ major, minor, op: 'read', value: v.rios ?? 0 }, { major, minor, op: 'write', value: v.wios ?? 0 });
  }
  return { bytes: bytes.length ? bytes : null, ops: ops.length ? ops : null };
}

/** The cgroup of `pid`, per controller (v1) or its one path (v2, key ''), from /proc/PID/cgroup. */
function cgroupsOf(procRoot: string, pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (read(path.join(procRoot, String(pid), 'cgroup')) ?? '').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1].split(',')) out.set(c, m[2]);
  }
  return out;
}

/**
 * Reads one sample of a running container (its first process is `pid`).
 * `previous` becomes its precpu_stats (and preread).
 */
export function readSample(src: StatsSources, c: { name: string; id: string; pid: number; cgroupPath: string }, previous?: StatsSample): StatsSample {
  return statsReader(src, c)(previous);
}

/** Reads samples of one container: where its cgroup is, found once. */
function statsReader(src: StatsSources, c: { name: string; id: string; pid: number; cgroupPath: string }): (previous?: StatsSample) => StatsSample {
  const groups = cgroupsOf(src.procRoot, c.pid);
  const v2 = fs.existsSync(path.join(src.cgroupRoot, 'cgroup.controllers'));
  const dirs = new Map<string, string>();
  const dir = (controller: string) => {
    let d = dirs.get(controller);
    if (d === undefined) {
      d = v2 ? path.join(src.cgroupRoot, groups.get('') ?? c.cgroupPath) : path.join(src.cgroupRoot, controller, groups.get(controller) ?? c.cgroupPath);
      dirs.set(controller, d);
    }
    return d;
  };
  return (previous) => sampleOf(src, c, v2, dir, previous);
}

function sampleOf(src: StatsSources, c: { name: string; id: string; pid: number }, v2: boolean, dir: (controller: string) => string, previous?: StatsSample): StatsSample {
  const sample = emptySample(c.name, c.id);
  sample.read = new Date().toISOString().replace('Z', '000000Z');
  if (previous) {
    sample.preread = previous.read;
    sample.precpu_stats = previous.cpu_stats;
  }
  const cpu = sample.cpu_stats;
  cpu.system_cpu_usage = systemCpu(src.procRoot);
  cpu.online_cpus = src.cpus;
  if (v2) {
    const d = dir('');
    const stat = keyValues(path.join(d, 'cpu.stat'));
    cpu.cpu_usage = { total_usage: (stat.usage_usec ?? 0) * 1000, usage_in_kernelmode: (stat.system_usec ?? 0) * 1000, usage_in_usermode: (stat.user_usec ?? 0) * 1000 };
    cpu.throttling_data = { periods: stat.nr_periods ?? 0, throttled_periods: stat.nr_throttled ?? 0, throttled_time: (stat.throttled_usec ?? 0) * 1000 };
    const limit = num(path.join(d, 'memory.max'));
    sample.memory_stats = { usage: num(path.join(d, 'memory.current')) ?? 0, stats: keyValues(path.join(d, 'memory.stat')), limit: Math.min(limit ?? Infinity, src.memoryBytes) };
    const io = ioV2(path.join(d, 'io.stat'));
    sample.blkio_stats = blkio(io.bytes, io.ops);
    sample.pids_stats = { current: num(path.join(d, 'pids.current')) ?? 0, ...(num(path.join(d, 'pids.max')) ? { limit: num(path.join(d, 'pids.max')) } : {}) };
  } else {
    const acct = dir('cpuacct');
    const ticks = keyValues(path.join(acct, 'cpuacct.stat'));
    const percpu = (read(path.join(acct, 'cpuacct.usage_percpu')) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    cpu.cpu_usage = {
      total_usage: num(path.join(acct, 'cpuacct.usage')) ?? 0,
      ...(percpu.length ? { percpu_usage: percpu } : {}),
      usage_in_kernelmode: (ticks.system ?? 0) * TICK_NS,
      usage_in_usermode: (ticks.user ?? 0) * TICK_NS,
    };
    const throttle = keyValues(path.join(dir('cpu'), 'cpu.stat'));
    cpu.throttling_data = { periods: throttle.nr_periods ?? 0, throttled_periods: throttle.nr_throttled ?? 0, throttled_time: throttle.throttled_time ?? 0 };
    const mem = dir('memory');
    const limit = num(path.join(mem, 'memory.limit_in_bytes'));
    sample.memory_stats = {
      usage: num(path.join(mem, 'memory.usage_in_bytes')) ?? 0,
      max_usage: num(path.join(mem, 'memory.max_usage_in_bytes')) ?? 0,
      stats: keyValues(path.join(mem, 'memory.stat')),
      failcnt: num(path.join(mem, 'memory.failcnt')) ?? 0,
      limit: Math.min(limit ?? Infinity, src.memoryBytes),
    };
    const b = dir('blkio');
    const recursive = fs.existsSync(path.join(b, 'blkio.throttle.io_service_bytes_recursive')) ? '_recursive' : '';
    sample.blkio_stats = blkio(blkioV1(path.join(b, `blkio.throttle.io_service_bytes${recursive}`)), blkioV1(path.join(b, `blkio.throttle.io_serviced${recursive}`)));
    const pidsDir = dir('pids');
    const pidsLimit = num(path.join(pidsDir, 'pids.max'));
    sample.pids_stats = { current: num(path.join(pidsDir, 'pids.current')) ?? 0, ...(pidsLimit ? { limit: pidsLimit } : {}) };
  }
  const nets = networks(src.procRoot, c.pid);
  if (nets) sample.networks = nets;
  return sample;
}

/** The container as a stats stream follows it: undefined once it is removed. */
export interface StatsTarget {
  id: string;
  name: string;
  running: boolean;
  pid: number;
}

/**
 * A stats stream: a sample a second while the container runs (`stream`),
 * or one sample taken a second after a first, so that its CPU share can be
 * computed. A stopped container gets one empty sample; one that stops while
 * followed ends the stream.
 */
export async function streamStats(current: () => StatsTarget | undefined, stream: boolean, send: (sample: StatsSample) => Promise<void>, signal: AbortSignal, src = HOST_SOURCES): Promise<void> {
  const first = current();
  if (!first) return;
  const name = `/${first.name.replace(/^\//, '')}`;
  if (!first.running) return send(emptySample(name, first.id));
  const read = statsReader(src, { name, id: first.id, pid: first.pid, cgroupPath: `/stevedore/${first.id}` });
  const sampleNow = (previous?: StatsSample): StatsSample | undefined => {
    const c = current();
    // The same run only: a restart between samples is another process.
    if (!c?.running || c.pid !== first.pid) return undefined;
    return read(previous);
  };
  let previous = stream ? undefined : sampleNow();
  if (!stream) await pause(1000, signal);
  while (!signal.aborted) {
    const sample = sampleNow(previous);
    if (!sample) return;
    await send(sample);
    if (!stream) return;
    previous = sample;
    await pause(1000, signal);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
