// Build farm benchmark: a cluster of three nodes against a cluster of one on
// the same machine (both `./stevedore cluster up`, one edge), through the
// docker CLI: six builds of ten steps at once (the nodes share the machine's
// cores, so the figure is the distribution and the farm's overhead, not a
// speed-up); the time from `docker build` to the first step's container on
// a node without FROM's layers against one that holds them; a build that is
// all cache on another node than the one that built it against the same node.
//
//   node bench/dist/build-farm.js [--rounds N]
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { busyboxTar, REPO } from './engines';
import { option, summarize, writeReport, type Row } from './stats';

const ROUNDS = option('--rounds', 3);

interface Cluster {
  host: string;
  stop(): void;
}

function clusterUp(nodes: number): Cluster {
  const root = fs.mkdtempSync('/tmp/sdc-bench-');
  const env = { ...process.env, STEVEDORE_SKIP_SETUP: '1', STEVEDORE_LOG_LEVEL: 'warn' };
  const out = execFileSync(path.join(REPO, 'stevedore'), ['cluster', 'up', '--root', root, '--nodes', String(nodes), '--edges', '1'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return {
    host: out.trim().split('\n')[0].replace(/^DOCKER_HOST=/, ''),
    stop: () => {
      execFileSync(path.join(REPO, 'stevedore'), ['cluster', 'down', '--root', root], { env, stdio: 'ignore' });
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** `docker` against a cluster; resolves with the milliseconds until `until` appeared in the output (the end when not given). */
function docker(host: string, args: string[], until?: RegExp): Promise<number> {
  const started = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { env: { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let seen: number | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (until && seen === undefined && until.test(out)) seen = ms();
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(seen ?? ms()) : reject(new Error(`docker ${args.join(' ')}: ${code}\n${out}`))));
  });
}

/** A context of ten steps whose RUN steps are this build's own. */
function tenSteps(work: string, token: string): string {
  const dir = fs.mkdtempSync(path.join(work, 'ctx-'));
  const steps = ['FROM busybox', ...Array.from({ length: 9 }, (_, i) => (i % 3 === 2 ? `ENV STEP${i} ${token}` : `RUN echo ${token}-${i} > /step${i}`))];
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `${steps.join('\n')}\n`);
  return dir;
}

async function sixAtOnce(host: string, work: string): Promise<{ each: number[]; wall: number }> {
  const t = process.hrtime.bigint();
  const each = await Promise.all(Array.from({ length: 6 }, () => docker(host, ['build', tenSteps(work, randomBytes(4).toString('hex'))])));
  return { each, wall: Number(process.hrtime.bigint() - t) / 1e6 };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/sd-bench-farm-');
  const tar = busyboxTar(work, ['true', 'sleep', 'echo', 'sh']);
  const samples = new Map<string, number[]>();
  const add = (key: string, v: number[]) => samples.set(key, [...(samples.get(key) ?? []), ...v]);
  try {
    for (const nodes of [3, 1]) {
      const c = clusterUp(nodes);
      try {
        await docker(c.host, ['import', tar, 'busybox']);
        const label = `${nodes} node${nodes > 1 ? 's' : ''}`;
        await sixAtOnce(c.host, work); // warm-up: every node fetches FROM's layer
        for (let r = 0; r < ROUNDS; r++) {
          const { each, wall } = await sixAtOnce(c.host, work);
          add(`${label} build`, each);
          add(`${label} wall`, [wall]);
        }
        if (nodes === 1) continue;
        // First step on a node without FROM's layers, against one that has them; a cache hit on another node than the builder's.
        for (let r = 0; r < ROUNDS; r++) {
          // A base of its own (a file more than busybox): its layer is on no node yet.
          const base = `farm/base${r}`;
          const own = path.join(work, `base${r}`);
          fs.mkdirSync(path.join(own, 'etc'), { recursive: true });
          fs.writeFileSync(path.join(own, 'etc', 'base'), `${base}\n`);
          fs.copyFileSync(tar, `${own}.tar`);
          execFileSync('tar', ['-C', own, '-rf', `${own}.tar`, './etc/base']);
          await docker(c.host, ['import', `${own}.tar`, base]);
          const ctx = tenSteps(work, randomBytes(4).toString('hex'));
          fs.writeFileSync(path.join(ctx, 'Dockerfile'), fs.readFileSync(path.join(ctx, 'Dockerfile'), 'utf8').replace('FROM busybox', `FROM ${base}`));
          const firstStep = /Step 1 : [^\n]*\n ---> Running in/;
          add('first step, base missing', [await docker(c.host, ['build', '--build-arg', 'constraint:node==node-2', ctx], firstStep)]);
          add('first step, base held', [await docker(c.host, ['build', '--no-cache', '--build-arg', 'constraint:node==node-2', ctx], firstStep)]);
          add('all cache, same node', [await docker(c.host, ['build', '--build-arg', 'constraint:node==node-2', ctx])]);
          add('all cache, other node', [await docker(c.host, ['build', '--build-arg', 'constraint:node==node-3', ctx])]);
        }
      } finally {
        c.stop();
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const med = (key: string) => summarize(samples.get(key)!).median;
  const p95 = (key: string) => summarize(samples.get(key)!).p95;
  const rows: Row[] = [
    { figure: '6 builds of 10 steps at once: each, median', unit: 'ms', stevedore: med('3 nodes build'), docker: med('1 node build'), ratio: med('3 nodes build') / med('1 node build'), better: 'lower' },
    { figure: '6 builds of 10 steps at once: each, p95', unit: 'ms', stevedore: p95('3 nodes build'), docker: p95('1 node build'), ratio: p95('3 nodes build') / p95('1 node build'), better: 'lower' },
    { figure: '6 builds of 10 steps at once: all six, median', unit: 'ms', stevedore: med('3 nodes wall'), docker: med('1 node wall'), ratio: med('3 nodes wall') / med('1 node wall'), better: 'lower' },
    { figure: "docker build to the first step's container, FROM's layers missing vs held (3 nodes)", unit: 'ms', stevedore: med('first step, base missing'), docker: med('first step, base held'), ratio: med('first step, base missing') / med('first step, base held'), better: 'lower' },
    { figure: 'a build all cache, on another node vs the builder (3 nodes)', unit: 'ms', stevedore: med('all cache, other node'), docker: med('all cache, same node'), ratio: med('all cache, other node') / med('all cache, same node'), better: 'lower' },
  ];
  writeReport(
    'build-farm',
    'Build farm: three nodes against one',
    { stevedore: 'Stevedore cluster, 3 nodes (or the case named first)', docker: 'Stevedore cluster, 1 node (or the case named second)' },
    'The farm against itself on one machine (not against Docker): the three nodes share its cores, so the first rows show the overhead of spreading builds, not a speed-up; the last two what a node without the base image and a cache hit built elsewhere cost.',
    rows,
    { samples: Object.fromEntries([...samples].map(([k, v]) => [k, summarize(v)])) },
    ['first', 'second'],
  );
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
