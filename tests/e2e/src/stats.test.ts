// docker stats through today's CLI (it asks for /containers/(id)/stats at
// 1.12): a CPU-bound container near 100%, a memory-filling one whose usage
// grows, the one-shot answer and the stream (one JSON sample per chunk), a
// stopped container's single empty sample, and an unknown one's 404.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { type Stack, startStackWithBusybox, stopStack } from './harness';

interface Sample {
  read: string;
  name: string;
  id: string;
  cpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number };
  memory_stats: { usage?: number; limit?: number; stats?: Record<string, number> };
  pids_stats: { current?: number };
  blkio_stats: Record<string, unknown>;
  networks?: Record<string, { rx_bytes: number; tx_bytes: number }>;
}

/** The first `count` chunks of a stats stream, each parsed; the connection is then closed. */
function streamChunks(stack: Stack, urlPath: string, count: number): Promise<{ chunks: string[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    const req = http.get({ socketPath: stack.socket, path: urlPath, agent: false }, (res) => {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      // The parser hands each HTTP chunk as one 'data' event here (each is small).
      res.on('data', (c: Buffer) => {
        chunks.push(c.toString());
        if (chunks.length === count) {
          req.destroy();
          resolve({ chunks, ended: false });
        }
      });
      res.on('end', () => resolve({ chunks, ended: true }));
    });
    req.on('error', (err) => (chunks.length >= count ? undefined : reject(err)));
  });
}

function cpuPercent(s: Sample): number {
  const cpu = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
  const system = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
  return system > 0 ? (cpu / system) * (s.cpu_stats.online_cpus ?? 1) * 100 : 0;
}

describe('docker stats', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
    assert.equal((await stack.docker(['run', '-d', '--name', 'spin', 'busybox', 'sh', '-c', 'while :; do :; done'])).code, 0);
    // Grows by 4 MiB a second in a tmpfs (/dev/shm is counted in the container's memory).
    assert.equal((await stack.docker(['run', '-d', '--name', 'fill', '-m', '128m', 'busybox', 'sh', '-c', 'i=0; while [ $i -lt 20 ]; do dd if=/dev/zero of=/dev/shm/f$i bs=1M count=4 2>/dev/null; i=$((i+1)); sleep 1; done; sleep 1000'])).code, 0);
  });
  after(() => stopStack(stack));

  test('docker stats --no-stream: CPU %, memory usage and limit, net and block I/O, PIDs; a CPU-bound container near 100%', async () => {
    const r = await stack.docker(['stats', '--no-stream', '--format', '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}']);
    assert.equal(r.code, 0, r.stderr);
    const lines = new Map(r.stdout.trim().split('\n').map((l) => [l.split(' ')[0], l] as const));
    const spin = lines.get('spin');
    assert.ok(spin, r.stdout);
    const cpu = Number(/ ([\d.]+)% /.exec(spin)![1]);
    // Two cores shared with the stack and the test: most of one of them.
    assert.ok(cpu > 60 && cpu < 210, spin);
    assert.match(spin, / [\d.]+[KMG]iB \/ [\d.]+[KMG]iB /);
    assert.match(spin, / [\d.]+k?B \/ [\d.]+k?B /);
    assert.match(spin, / 1$/);
    assert.match(lines.get('fill') ?? '', / [\d.]+MiB \/ 128MiB /);
  });

  test('the stream: a sample a second, each in its own chunk, memory usage of a filling container growing', async () => {
    const { chunks, ended } = await streamChunks(stack, '/v1.12/containers/fill/stats', 4);
    assert.equal(ended, false);
    const samples = chunks.map((c) => {
      assert.match(c, /^\{.*\}\n$/s);
      return JSON.parse(c) as Sample;
    });
    assert.equal(samples[0].name, '/fill');
    assert.match(samples[0].id, /^[0-9a-f]{64}$/);
    assert.equal(samples[0].memory_stats.limit, 128 * 1024 * 1024);
    for (let i = 1; i < samples.length; i++) {
      // Each sample carries the one before as its precpu_stats.
      assert.deepEqual(samples[i].precpu_stats, samples[i - 1].cpu_stats);
      const gap = Date.parse(samples[i].read) - Date.parse(samples[i - 1].read);
      assert.ok(gap >= 900 && gap < 2500, `${gap} ms between samples`);
    }
    assert.ok(samples[3].memory_stats.usage! > samples[0].memory_stats.usage! + 4 * 1024 * 1024, `${samples[0].memory_stats.usage} -> ${samples[3].memory_stats.usage}`);
    assert.ok(samples.every((s) => (s.pids_stats.current ?? 0) >= 1));
    assert.ok(samples[0].networks?.eth0, JSON.stringify(samples[0].networks));
  });

  test('stream=0: one sample whose precpu_stats is a second older, so its CPU share is known', async () => {
    const r = await stack.request('GET', '/v1.12/containers/spin/stats?stream=0');
    assert.equal(r.status, 200);
    const lines = r.text.trim().split('\n');
    assert.equal(lines.length, 1);
    const s = JSON.parse(lines[0]) as Sample;
    assert.ok(cpuPercent(s) > 60, `${cpuPercent(s)}%`);
  });

  test('a stopped container: one empty sample and the stream ends; one that stops while followed ends it; an unknown one is a 404', async () => {
    assert.equal((await stack.docker(['run', '--name', 'done', 'busybox', 'true'])).code, 0);
    const stopped = await streamChunks(stack, '/v1.12/containers/done/stats?stream=1', 5);
    assert.equal(stopped.ended, true);
    assert.equal(stopped.chunks.length, 1);
    const empty = JSON.parse(stopped.chunks[0]) as Sample;
    assert.deepEqual([empty.name, empty.read, empty.cpu_stats.cpu_usage.total_usage, empty.memory_stats], ['/done', '0001-01-01T00:00:00Z', 0, {}]);

    assert.equal((await stack.docker(['run', '-d', '--name', 'brief', 'busybox', 'sleep', '3'])).code, 0);
    const started = Date.now();
    const followed = await streamChunks(stack, '/v1.12/containers/brief/stats', 30);
    assert.equal(followed.ended, true);
    assert.ok(Date.now() - started < 10_000);
    assert.ok(followed.chunks.length >= 1 && followed.chunks.length <= 5, `${followed.chunks.length} samples`);

    const unknown = await stack.request('GET', '/v1.12/containers/nosuch/stats?stream=0');
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /No such container: nosuch/);
  });
});
