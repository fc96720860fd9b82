// Container benchmark, Stevedore and the Docker engine in one run:
// `docker run --rm IMAGE true` latency (the real CLI), create→start→wait→remove
// throughput at concurrency 1, 4 and 16, p99/p50 of 32 parallel runs,
// GET /containers/json?all=1 with no and with 1,000 containers, reading back
// 50 MB of logs, 50 MB through an attach, the memory of the per-container
// monitors, `docker exec c true` latency (and the CLI's own share of it), and
// the engine's CPU per stats sample.
//
//   node bench/dist/containers.js [--runs 20] [--containers 1000]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { cliExecFloorMs } from './cli-floor';
import { busyboxTar, importBusybox, rssKiB, startDocker, startStevedore, type Engine } from './engines';
import { json, send } from './http-client';
import { option, percentile, row, summarize, writeReport, type Row } from './stats';

const RUNS = option('--runs', 20);
const CONTAINERS = option('--containers', 1000);
const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

async function cycle(e: Engine, cmd: string[] = ['true']): Promise<number> {
  const t = process.hrtime.bigint();
  const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: cmd, HostConfig: { NetworkMode: 'none' } });
  if (c.status !== 201) throw new Error(`${e.name} create: ${c.status} ${JSON.stringify(c.body)}`);
  const id = c.body.Id as string;
  const s = await json(e.socket, 'POST', `/v1.12/containers/${id}/start`);
  if (s.status !== 204) throw new Error(`${e.name} start: ${s.status} ${JSON.stringify(s.body)}`);
  await json(e.socket, 'POST', `/v1.12/containers/${id}/wait`);
  await json(e.socket, 'DELETE', `/v1.12/containers/${id}`);
  return ms(t);
}

async function throughput(e: Engine, concurrency: number, total: number): Promise<number> {
  let left = total;
  const t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left-- > 0) await cycle(e);
  }));
  return total / (ms(t) / 1000);
}

/** Attached before the start (as `docker run` attaches), the container's output read through the attach stream: MB/s from the start. */
function attachThroughput(e: Engine, id: string): Promise<{ mbps: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: e.socket, method: 'POST', path: `/v1.12/containers/${id}/attach?stream=1&stdout=1&stderr=1`, agent: false }, (res) => {
      let bytes = 0;
      const t = process.hrtime.bigint();
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('end', () => resolve({ mbps: bytes / 1e6 / (ms(t) / 1000), bytes }));
      res.on('error', reject);
      json(e.socket, 'POST', `/v1.12/containers/${id}/start`).catch(reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Latency of one list request, ms. */
async function listOnce(e: Engine): Promise<number> {
  const t = process.hrtime.bigint();
  const r = await send(e.socket, 'GET', '/v1.12/containers/json?all=1', { keep: false });
  if (r.status !== 200) throw new Error(`${e.name} list: ${r.status}`);
  return ms(t);
}

function cliRun(e: Engine): number {
  const t = process.hrtime.bigint();
  const r = spawnSync('docker', ['run', '--rm', '--net=none', 'busybox', 'true'], { env: { ...process.env, DOCKER_HOST: `unix://${e.socket}` } });
  if (r.status !== 0) throw new Error(`${e.name} docker run: ${r.stderr}`);
  return ms(t);
}

function cliExec(e: Engine, id: string): number {
  const t = process.hrtime.bigint();
  const r = spawnSync('docker', ['exec', id, 'true'], { env: { ...process.env, DOCKER_HOST: `unix://${e.socket}` } });
  if (r.status !== 0) throw new Error(`${e.name} docker exec: ${r.stderr}`);
  return ms(t);
}

/** CPU time (user and system, ms) the engine's processes used. */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
}

/**
 * Streams the stats of every container for `ms`: the engine's CPU time per
 * sample sent, less what it uses idle over as long (health checks,
 * heartbeats: measured first, with the same containers running).
 */
async function statsCost(e: Engine, ids: string[], ms: number): Promise<{ cpuMsPerSample: number; samples: number }> {
  const pids = e.pids();
  const idleFrom = cpuMs(pids);
  await new Promise((r) => setTimeout(r, ms));
  const idle = cpuMs(pids) - idleFrom;
  const before = cpuMs(pids);
  let samples = 0;
  const requests = ids.map((id) => http.get({ socketPath: e.socket, path: `/v1.12/containers/${id}/stats`, agent: false }, (res) => res.on('data', (c: Buffer) => (samples += c.toString().split('\n').filter((l) => l.startsWith('{')).length))));
  for (const r of requests) r.on('error', () => undefined);
  await new Promise((r) => setTimeout(r, ms));
  for (const r of requests) r.destroy();
  return { cpuMsPerSample: Math.max(0, cpuMs(pids) - before - idle) / Math.max(1, samples), samples };
}

function pidsMatching(re: RegExp): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      return re.test(fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '));
    } catch {
      return false;
    }
  }).map(Number);
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/bench-containers-');
  const tarFile = busyboxTar(work, ['sh', 'true', 'sleep', 'head', 'tr', 'fold', 'yes']);
  const stevedore = await startStevedore({ STEVEDORE_LOG_MAX_SIZE: String(200 * 1024 * 1024) });
  const docker = await startDocker();
  const engines = [stevedore, docker];
  const samples = new Map<string, number[]>();
  const execTargets = new Map<string, string>();
  const add = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);
  try {
    for (const e of engines) {
      await importBusybox(e, tarFile);
      for (let i = 0; i < 3; i++) await cycle(e); // warm-up
    }
    process.stderr.write('bench: docker run --rm latency\n');
    for (let i = 0; i < RUNS; i++) for (const e of i % 2 ? [...engines].reverse() : engines) add(`${e.name} run`, cliRun(e));
    for (const c of [1, 4, 16]) {
      process.stderr.write(`bench: throughput at concurrency ${c}\n`);
      for (const e of engines) add(`${e.name} tput${c}`, await throughput(e, c, Math.max(32, c * 4)));
    }
    process.stderr.write('bench: 32 parallel runs\n');
    for (let round = 0; round < 3; round++) for (const e of engines) for (const v of await Promise.all(Array.from({ length: 32 }, () => cycle(e)))) add(`${e.name} par32`, v);

    process.stderr.write('bench: 50 MB of logs\n');
    for (const e of engines) {
      const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sh', '-c', 'yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -c 52428800'], HostConfig: { NetworkMode: 'none' } });
      const id = c.body.Id;
      await json(e.socket, 'POST', `/v1.12/containers/${id}/start`);
      await json(e.socket, 'POST', `/v1.12/containers/${id}/wait`);
      for (let i = 0; i < 3; i++) {
        const t = process.hrtime.bigint();
        const r = await send(e.socket, 'GET', `/v1.12/containers/${id}/logs?stdout=1&stderr=1`, { keep: false });
        add(`${e.name} logsMBps`, r.bytes / 1e6 / (ms(t) / 1000));
        add(`${e.name} logsBytes`, r.bytes);
      }
      await json(e.socket, 'DELETE', `/v1.12/containers/${id}`);
    }
    process.stderr.write('bench: 50 MB through an attach\n');
    // Five rounds, interleaved: either engine's rate moves by 10-15% from one to the next here.
    for (let round = 0; round < 5; round++) {
      for (const e of engines) {
        const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sh', '-c', 'yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -c 52428800'], HostConfig: { NetworkMode: 'none' } });
        const r = await attachThroughput(e, c.body.Id);
        if (r.bytes < 52428800) throw new Error(`${e.name} attach: ${r.bytes} bytes`);
        add(`${e.name} attachMBps`, r.mbps);
        await json(e.socket, 'POST', `/v1.12/containers/${c.body.Id}/wait`);
        await json(e.socket, 'DELETE', `/v1.12/containers/${c.body.Id}`);
      }
    }

    process.stderr.write('bench: memory of 20 running containers\n');
    for (const e of engines) {
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' } });
        ids.push(c.body.Id);
        await json(e.socket, 'POST', `/v1.12/containers/${c.body.Id}/start`);
      }
      const monitors = e.name === 'stevedore' ? pidsMatching(/stevedore-shim/) : pidsMatching(/containerd-shim/);
      add(`${e.name} monitorKiB`, rssKiB(monitors) / Math.max(1, ids.length));
      for (const id of ids) await json(e.socket, 'DELETE', `/v1.12/containers/${id}?force=1`);
    }

    process.stderr.write('bench: docker exec c true\n');
    for (const e of engines) {
      const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' } });
      await json(e.socket, 'POST', `/v1.12/containers/${c.body.Id}/start`);
      execTargets.set(e.name, c.body.Id);
      cliExec(e, c.body.Id); // warm-up
    }
    for (let i = 0; i < RUNS; i++) for (const e of i % 2 ? [...engines].reverse() : engines) add(`${e.name} exec`, cliExec(e, execTargets.get(e.name)!));
    for (const e of engines) await json(e.socket, 'DELETE', `/v1.12/containers/${execTargets.get(e.name)}?force=1`);
    add('cliExecFloor', await cliExecFloorMs(RUNS));

    process.stderr.write('bench: stats of 10 containers, streamed for 5 s\n');
    for (const e of engines) {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' } });
        await json(e.socket, 'POST', `/v1.12/containers/${c.body.Id}/start`);
        ids.push(c.body.Id);
      }
      const r = await statsCost(e, ids, 5000);
      add(`${e.name} statsCpuMs`, r.cpuMsPerSample);
      add(`${e.name} statsSamples`, r.samples);
      for (const id of ids) await json(e.socket, 'DELETE', `/v1.12/containers/${id}?force=1`);
    }

    process.stderr.write('bench: listing no containers\n');
    for (let round = 0; round < 3; round++) for (const e of engines) for (let i = 0; i < 10; i++) add(`${e.name} list0`, await listOnce(e));
    process.stderr.write(`bench: listing ${CONTAINERS} containers\n`);
    for (const e of engines) {
      for (let i = 0; i < CONTAINERS; i++) {
        const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
        if (c.status !== 201) throw new Error(`${e.name} create ${i}: ${c.status}`);
      }
    }
    for (let round = 0; round < 3; round++) {
      for (const e of engines) {
        for (let i = 0; i < 10; i++) add(`${e.name} list`, await listOnce(e));
      }
    }
  } finally {
    await Promise.all(engines.map((e) => e.stop()));
    fs.rmSync(work, { recursive: true, force: true });
  }
  const med = (k: string) => summarize(samples.get(k)!).median;
  const par = (name: string) => {
    const s = [...samples.get(`${name} par32`)!].sort((a, b) => a - b);
    return percentile(s, 99) / percentile(s, 50);
  };
  const rows: Row[] = [
    row('docker run --rm busybox true, median', 'ms', med('stevedore run'), med('docker run'), 'lower'),
    row('docker run --rm busybox true, p95', 'ms', summarize(samples.get('stevedore run')!).p95, summarize(samples.get('docker run')!).p95, 'lower'),
    ...[1, 4, 16].map((c) => row(`create→start→wait→remove at concurrency ${c}`, 'per s', med(`stevedore tput${c}`), med(`docker tput${c}`), 'higher')),
    row('32 parallel runs: p99 / p50', '×', par('stevedore'), par('docker'), 'lower'),
    row('32 parallel runs: p50', 'ms', med('stevedore par32'), med('docker par32'), 'lower'),
    row('GET /containers/json?all=1, no containers, median', 'ms', med('stevedore list0'), med('docker list0'), 'lower'),
    row(`GET /containers/json?all=1, ${CONTAINERS} containers, median`, 'ms', med('stevedore list'), med('docker list'), 'lower'),
    row('reading back 50 MB of logs', 'MB/s', med('stevedore logsMBps'), med('docker logsMBps'), 'higher'),
    row('50 MB of output through an attach', 'MB/s', med('stevedore attachMBps'), med('docker attachMBps'), 'higher'),
    row('memory of the monitor per running container (RSS)', 'KiB', med('stevedore monitorKiB'), med('docker monitorKiB'), 'lower'),
    row('docker exec c true, median', 'ms', med('stevedore exec'), med('docker exec'), 'lower'),
    row('stats streamed for 10 containers: engine CPU per sample (idle use subtracted)', 'ms', med('stevedore statsCpuMs'), med('docker statsCpuMs'), 'lower'),
  ];
  writeReport('containers', 'Container benchmark', { stevedore: stevedore.version, docker: docker.version }, `Both with --net=none (the network benchmark measures the bridge). Docker's monitor is containerd-shim. The CLI alone takes ${med('cliExecFloor').toFixed(1)} ms of docker exec c true (against a server that answers at once).`, rows, { settings: { runs: RUNS, containers: CONTAINERS }, logBytes: { stevedore: med('stevedore logsBytes'), docker: med('docker logsBytes') }, cliExecFloorMs: med('cliExecFloor') });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
