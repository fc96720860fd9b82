// Cluster benchmark: what the cluster's routing costs, side by side with one
// Stevedore host on the same machine (a cluster started by
// `./stevedore cluster up`, three nodes and one edge; a stack started by
// `./stevedore up`): the median latency of a container request (inspect),
// `ps -a` over 3 nodes × N/3 containers against one host with N, and
// `docker run --rm` through each. The engines take turns, in blocks.
//
//   node bench/dist/cluster.js [--containers N] [--requests R] [--runs K]
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { busyboxTar, importBusybox, REPO, startStevedore, type Engine } from './engines';
import { getOk, json } from './http-client';
import { option, summarize, writeReport, type Row } from './stats';

const CONTAINERS = option('--containers', 900);
const REQUESTS = option('--requests', 1000);
const RUNS = option('--runs', 20);
const BLOCK = 50;

interface Target {
  name: 'cluster' | 'one host';
  socket: string;
}


async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function create(t: Target, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await json(t.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
    if (c.status !== 201) throw new Error(`${t.name} create: ${c.status} ${JSON.stringify(c.body)}`);
    ids.push(c.body.Id as string);
  }
  return ids;
}

function runRm(t: Target): number {
  const started = process.hrtime.bigint();
  const r = spawnSync('docker', ['run', '--rm', '--net=none', 'busybox', 'true'], { env: { ...process.env, DOCKER_HOST: `unix://${t.socket}` } });
  if (r.status !== 0) throw new Error(`${t.name} run --rm: ${r.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function startCluster(): Promise<{ target: Target; stop(): void }> {
  const root = fs.mkdtempSync('/tmp/sdc-bench-');
  const env = { ...process.env, STEVEDORE_SKIP_SETUP: '1', STEVEDORE_LOG_LEVEL: 'warn' };
  const out = execFileSync(path.join(REPO, 'stevedore'), ['cluster', 'up', '--root', root, '--nodes', '3', '--edges', '1'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const socket = out.trim().split('\n')[0].replace(/^DOCKER_HOST=unix:\/\//, '');
  return {
    target: { name: 'cluster', socket },
    stop: () => {
      execFileSync(path.join(REPO, 'stevedore'), ['cluster', 'down', '--root', root], { env, stdio: 'ignore' });
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/sd-bench-cluster-');
  const tarFile = busyboxTar(work, ['true', 'sleep']);
  const one: Engine = await startStevedore();
  const cluster = await startCluster();
  const targets: Target[] = [cluster.target, { name: 'one host', socket: one.socket }];
  const samples = new Map<string, number[]>();
  const add = (key: string, v: number[]) => samples.set(key, [...(samples.get(key) ?? []), ...v]);
  try {
    for (const t of targets) await importBusybox({ ...one, socket: t.socket }, tarFile);
    // A container request: routed by the index to its node in the cluster, straight to the runtime on one host.
    const probes = new Map<string, string>();
    for (const t of targets) probes.set(t.name, (await create(t, 1))[0]);
    const agents = new Map(targets.map((t) => [t.name, new http.Agent({ keepAlive: true, maxSockets: 1 })]));
    for (const t of targets) for (let i = 0; i < 50; i++) await getOk(agents.get(t.name)!, t.socket, `/v1.12/containers/${probes.get(t.name)}/json`);
    for (let block = 0; block < REQUESTS / BLOCK; block++) {
      for (const t of block % 2 ? [...targets].reverse() : targets) {
        const out: number[] = [];
        for (let i = 0; i < BLOCK; i++) out.push(await timed(() => getOk(agents.get(t.name)!, t.socket, `/v1.12/containers/${probes.get(t.name)}/json`)));
        add(`${t.name} inspect`, out);
      }
    }
    // docker run --rm, taking turns.
    for (let i = 0; i < RUNS; i++) for (const t of i % 2 ? [...targets].reverse() : targets) add(`${t.name} run --rm`, [runRm(t)]);
    // ps -a over N containers: spread 3 × N/3 on the cluster, N on one host.
    for (const t of targets) await create(t, CONTAINERS - 1);
    for (let i = 0; i < 20; i++) {
      for (const t of i % 2 ? [...targets].reverse() : targets) add(`${t.name} ps -a`, [await timed(() => getOk(agents.get(t.name)!, t.socket, '/v1.12/containers/json?all=1'))]);
    }
    for (const a of agents.values()) a.destroy();
  } finally {
    cluster.stop();
    await one.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  const med = (key: string) => summarize(samples.get(key)!).median;
  const rows: Row[] = [
    { figure: 'container inspect, median', unit: 'ms', stevedore: med('cluster inspect'), docker: med('one host inspect'), ratio: med('cluster inspect') / med('one host inspect'), better: 'lower', detail: { routingCostMs: med('cluster inspect') - med('one host inspect') } },
    { figure: `ps -a, ${CONTAINERS} containers (3 nodes × ${CONTAINERS / 3} vs one host)`, unit: 'ms', stevedore: med('cluster ps -a'), docker: med('one host ps -a'), ratio: med('cluster ps -a') / med('one host ps -a'), better: 'lower' },
    { figure: 'docker run --rm, median', unit: 'ms', stevedore: med('cluster run --rm'), docker: med('one host run --rm'), ratio: med('cluster run --rm') / med('one host run --rm'), better: 'lower' },
  ];
  writeReport(
    'cluster',
    'Cluster: routing cost against one host',
    { stevedore: 'Stevedore cluster (3 nodes, 1 edge)', docker: 'Stevedore one host' },
    `The cluster compared with one Stevedore host (not with Docker). Routing cost per container request: ${(med('cluster inspect') - med('one host inspect')).toFixed(3)} ms at the median (goal: at most 1 ms); ps -a goal at most 1.5x; run --rm goal at most 1.2x.`,
    rows,
    { samples: Object.fromEntries([...samples].map(([k, v]) => [k, summarize(v)])) },
    ['cluster', 'one host'],
  );
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
