// Build benchmark, Stevedore and the Docker engine 20.10's classic builder in
// one run, through the real CLI (DOCKER_BUILDKIT=0): a ten-step Dockerfile
// built cold (--no-cache) and fully cached, interleaved; and four different
// builds at once, on the Docker engine and on Stevedore with one and with two
// build workers (one build at a time each, so that the workers are what
// scales). Both engines put RUN containers on a bridge.
//
//   node bench/dist/build.js [--rounds 5]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { busyboxTar, importBusybox, makeBridge, startDocker, startStevedore, type Engine } from './engines';
import { option, row, summarize, writeReport, type Row } from './stats';

const ROUNDS = option('--rounds', 5);

const TEN_STEPS = (n: string) => `FROM busybox
MAINTAINER bench
ENV BUILD ${n}
RUN echo "$BUILD" > /build-id
ADD payload /payload/
RUN cat /payload/* | wc -c > /payload-size
WORKDIR /payload
RUN ls -l > /listing
EXPOSE 8080
CMD ["cat", "/build-id"]
`;

function contextDir(work: string, name: string, dockerfile: string): string {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'payload'), { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, 'payload', `f${i}`), `${name} ${i}\n`.repeat(500));
  fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

function build(e: Engine, dir: string, extra: string[] = []): number {
  const t = process.hrtime.bigint();
  const r = spawnSync('docker', ['build', ...extra, dir], { env: { ...process.env, DOCKER_HOST: `unix://${e.socket}`, DOCKER_BUILDKIT: '0' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${e.name} build: ${r.stderr}${r.stdout}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Four different builds at once (each RUN sleeps 1 s: work that waits, as downloads do); ms until all are done. */
async function fourAtOnce(e: Engine, work: string, tag: string): Promise<number> {
  const dirs = [1, 2, 3, 4].map((i) => contextDir(work, `${tag}-${i}-${Date.now()}`, `FROM busybox\nENV N ${tag}${i}${Date.now()}\nRUN sleep 1\nRUN echo "$N" > /n\nCMD ["cat", "/n"]\n`));
  const t = process.hrtime.bigint();
  const { spawn } = await import('node:child_process');
  await Promise.all(
    dirs.map(
      (dir) =>
        new Promise<void>((resolve, reject) => {
          const c = spawn('docker', ['build', dir], { env: { ...process.env, DOCKER_HOST: `unix://${e.socket}`, DOCKER_BUILDKIT: '0' }, stdio: 'ignore' });
          c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${e.name} build exited ${code}`))));
        }),
    ),
  );
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/bench-build-');
  const tarFile = busyboxTar(work, ['sh', 'echo', 'cat', 'wc', 'ls', 'sleep']);
  const deleteBridge = makeBridge('sdbenchref1', '10.218.0.1/24');
  const one = await startStevedore({ STEVEDORE_BRIDGE: 'sdbench1', STEVEDORE_BRIDGE_SUBNET: '10.219.0.0/24', STEVEDORE_BUILD_WORKERS: '1', STEVEDORE_BUILD_CONCURRENCY: '1' });
  const docker = await startDocker({ bridge: 'sdbenchref1' });
  const engines = [one, docker];
  const samples = new Map<string, number[]>();
  const add = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);
  let two: Engine | undefined;
  try {
    for (const e of engines) {
      await importBusybox(e, tarFile);
    }
    const dir = contextDir(work, 'ten', TEN_STEPS('ten'));
    for (const e of engines) build(e, dir); // warm-up, and the cache for the cached rounds
    process.stderr.write('bench: ten steps, cold and cached\n');
    for (let round = 0; round < ROUNDS; round++) {
      for (const e of round % 2 ? [...engines].reverse() : engines) {
        add(`${e.name} cold`, build(e, dir, ['--no-cache']));
        add(`${e.name} cached`, build(e, dir));
      }
    }
    process.stderr.write('bench: four builds at once\n');
    for (let round = 0; round < 3; round++) for (const e of engines) add(`${e.name} four`, await fourAtOnce(e, work, `${e.name}${round}`));
    await one.stop();
    engines.splice(0, 1);
    two = await startStevedore({ STEVEDORE_BRIDGE: 'sdbench1', STEVEDORE_BRIDGE_SUBNET: '10.219.0.0/24', STEVEDORE_BUILD_WORKERS: '2', STEVEDORE_BUILD_CONCURRENCY: '1' });
    await importBusybox(two, tarFile);
    for (let round = 0; round < 3; round++) add('stevedore four2', await fourAtOnce(two, work, `two${round}`));
  } finally {
    await Promise.all([...engines, ...(two ? [two] : [])].map((e) => e.stop()));
    deleteBridge();
    spawnSync('ip', ['link', 'delete', 'sdbench1']);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const med = (k: string) => summarize(samples.get(k)!).median;
  const rows: Row[] = [
    row('ten-step build, cold (--no-cache)', 'ms', med('stevedore cold'), med('docker cold'), 'lower'),
    row('ten-step build, fully cached', 'ms', med('stevedore cached'), med('docker cached'), 'lower'),
    row('four builds at once, one worker (Stevedore) / the engine (Docker)', 'ms', med('stevedore four'), med('docker four'), 'lower'),
    row('four builds at once, two workers (Stevedore) / the engine (Docker)', 'ms', med('stevedore four2'), med('docker four'), 'lower'),
    row('four builds at once: two workers / one worker (Stevedore only)', '×', med('stevedore four2') / med('stevedore four'), 1, 'lower'),
  ];
  writeReport('build', 'Build benchmark', { stevedore: one.version, docker: docker.version }, `The Docker engine with its classic builder; both through the CLI with DOCKER_BUILDKIT=0, ${ROUNDS} rounds interleaved. RUN containers on a bridge in both engines. Four builds at once: four different Dockerfiles, each with a RUN that sleeps 1 s; Stevedore's workers run one build at a time each.`, rows, { settings: { rounds: ROUNDS }, samples: Object.fromEntries(samples) });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
