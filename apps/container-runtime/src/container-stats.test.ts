// The stats reader against made-up cgroup v1 and v2 trees and /proc files:
// this host runs v1, so v2 is checked here only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { emptySample, readSample, streamStats, type StatsSample, type StatsSources } from './container-stats';

const ID = 'c'.repeat(64);
const PID = 4242;

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stats-'));
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), body);
  }
  return root;
}

const PROC = {
  'proc/stat': 'cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 50 0 25 425 0 0 0 0 0 0\n',
  [`proc/${PID}/net/dev`]: 'Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 2166 25 1 2 0 0 0 0 542 7 3 4 0 0 0 0\n',
};

function sources(root: string): StatsSources {
  return { cgroupRoot: path.join(root, 'cgroup'), procRoot: path.join(root, 'proc'), cpus: 2, memoryBytes: 8 * 1024 ** 3 };
}

test('cgroup v1: cpuacct, cpu throttling, memory (limit capped at the host\'s), blkio, pids, and the namespace\'s devices but lo', () => {
  const g = `cgroup/%s/stevedore/${ID}`;
  const at = (c: string, f: string) => `${g.replace('%s', c)}/${f}`;
  const root = tree({
    ...PROC,
    [`proc/${PID}/cgroup`]: `4:memory:/stevedore/${ID}\n3:cpu,cpuacct:/stevedore/${ID}\n2:blkio:/stevedore/${ID}\n1:pids:/stevedore/${ID}\n`,
    [at('cpuacct', 'cpuacct.usage')]: '3000000\n',
    [at('cpuacct', 'cpuacct.usage_percpu')]: '1000000 2000000 \n',
    [at('cpuacct', 'cpuacct.stat')]: 'user 2\nsystem 1\n',
    [at('cpu', 'cpu.stat')]: 'nr_periods 5\nnr_throttled 2\nthrottled_time 700\n',
    [at('memory', 'memory.usage_in_bytes')]: '749568\n',
    [at('memory', 'memory.max_usage_in_bytes')]: '753664\n',
    [at('memory', 'memory.limit_in_bytes')]: '9223372036854771712\n',
    [at('memory', 'memory.failcnt')]: '0\n',
    [at('memory', 'memory.stat')]: 'cache 282624\nrss 53248\ntotal_inactive_file 118784\n',
    [at('blkio', 'blkio.throttle.io_service_bytes_recursive')]: '8:0 Read 4096\n8:0 Write 0\nTotal 4096\n',
    [at('blkio', 'blkio.throttle.io_serviced_recursive')]: '8:0 Read 1\n8:0 Write 0\nTotal 1\n',
    [at('pids', 'pids.current')]: '3\n',
    [at('pids', 'pids.max')]: 'max\n',
  });
  const s = readSample(sources(root), { name: '/box', id: ID, pid: PID, cgroupPath: `/stevedore/${ID}` });
  assert.deepEqual(s.cpu_stats, {
    cpu_usage: { total_usage: 3000000, percpu_usage: [1000000, 2000000], usage_in_kernelmode: 10_000_000, usage_in_usermode: 20_000_000 },
    throttling_data: { periods: 5, throttled_periods: 2, throttled_time: 700 },
    system_cpu_usage: 1000 * 10_000_000,
    online_cpus: 2,
  });
  assert.deepEqual(s.memory_stats, { usage: 749568, max_usage: 753664, stats: { cache: 282624, rss: 53248, total_inactive_file: 118784 }, failcnt: 0, limit: 8 * 1024 ** 3 });
  assert.deepEqual(s.blkio_stats.io_service_bytes_recursive, [{ major: 8, minor: 0, op: 'Read', value: 4096 }, { major: 8, minor: 0, op: 'Write', value: 0 }]);
  assert.deepEqual(s.blkio_stats.io_serviced_recursive, [{ major: 8, minor: 0, op: 'Read', value: 1 }, { major: 8, minor: 0, op: 'Write', value: 0 }]);
  assert.deepEqual(s.pids_stats, { current: 3 });
  assert.deepEqual(s.networks, { eth0: { rx_bytes: 2166, rx_packets: 25, rx_errors: 1, rx_dropped: 2, tx_bytes: 542, tx_packets: 7, tx_errors: 3, tx_dropped: 4 } });
  assert.match(s.read, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  assert.equal(s.preread, '0001-01-01T00:00:00Z');
  // The next sample carries this one's CPU as its precpu_stats.
  const next = readSample(sources(root), { name: '/box', id: ID, pid: PID, cgroupPath: `/stevedore/${ID}` }, s);
  assert.deepEqual([next.precpu_stats, next.preread], [s.cpu_stats, s.read]);
  fs.rmSync(root, { recursive: true });
});

test('cgroup v2: cpu.stat in microseconds, memory.current and .max, io.stat as read/write entries, pids', () => {
  const d = `cgroup/system.slice/box-${ID}.scope`;
  const root = tree({
    ...PROC,
    'cgroup/cgroup.controllers': 'cpu io memory pids\n',
    [`proc/${PID}/cgroup`]: `0::/system.slice/box-${ID}.scope\n`,
    [`${d}/cpu.stat`]: 'usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 4\nnr_throttled 1\nthrottled_usec 9\n',
    [`${d}/memory.current`]: '1048576\n',
    [`${d}/memory.max`]: '67108864\n',
    [`${d}/memory.stat`]: 'anon 4096\ninactive_file 8192\n',
    [`${d}/io.stat`]: '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n',
    [`${d}/pids.current`]: '2\n',
    [`${d}/pids.max`]: '100\n',
  });
  const s = readSample(sources(root), { name: '/box', id: ID, pid: PID, cgroupPath: `/stevedore/${ID}` });
  assert.deepEqual(s.cpu_stats.cpu_usage, { total_usage: 5_000_000, usage_in_kernelmode: 2_000_000, usage_in_usermode: 3_000_000 });
  assert.deepEqual(s.cpu_stats.throttling_data, { periods: 4, throttled_periods: 1, throttled_time: 9000 });
  assert.deepEqual(s.memory_stats, { usage: 1048576, stats: { anon: 4096, inactive_file: 8192 }, limit: 67108864 });
  assert.deepEqual(s.blkio_stats.io_service_bytes_recursive, [{ major: 8, minor: 0, op: 'read', value: 4096 }, { major: 8, minor: 0, op: 'write', value: 8192 }]);
  assert.deepEqual(s.blkio_stats.io_serviced_recursive, [{ major: 8, minor: 0, op: 'read', value: 1 }, { major: 8, minor: 0, op: 'write', value: 2 }]);
  assert.deepEqual(s.pids_stats, { current: 2, limit: 100 });
  fs.rmSync(root, { recursive: true });
});

test('a stream: a stopped container gets one empty sample; a restart between samples (another pid) ends the stream; an abort ends it', async () => {
  const sent: StatsSample[] = [];
  const send = async (s: StatsSample) => {
    sent.push(s);
  };
  await streamStats(() => ({ id: ID, name: 'box', running: false, pid: 0 }), true, send, new AbortController().signal);
  assert.deepEqual(sent, [emptySample('/box', ID)]);

  const root = tree(PROC);
  sent.length = 0;
  let pid = PID;
  const ended = streamStats(() => ({ id: ID, name: '/box', running: true, pid }), true, async (s) => {
    sent.push(s);
    pid = PID + 1;
  }, new AbortController().signal, sources(root));
  await ended;
  assert.equal(sent.length, 1);

  const abort = new AbortController();
  sent.length = 0;
  const aborted = streamStats(() => ({ id: ID, name: '/box', running: true, pid: PID }), true, async (s) => {
    sent.push(s);
    abort.abort();
  }, abort.signal, sources(root));
  await aborted;
  assert.equal(sent.length, 1);
  fs.rmSync(root, { recursive: true });
});
