// Events and memory, Stevedore and the Docker engine in one run: the latency
// from a container's start to its `start` event on a GET /events stream
// (measured from the moment the start request is sent), and the resident
// memory of the whole engine idle (3 s after the last request, and once
// settled, 45 s later) and with 50 running containers, as resident pages
// counted once (footprintKiB) and as the sum of RSS
// (Stevedore's supervisor, services, Redis and monitors; dockerd, containerd
// and the shims).
//
//   node bench/dist/events-memory.js [--events 40] [--containers 50] [--settle 45]
import * as fs from 'node:fs';
import * as http from 'node:http';
import { busyboxTar, footprintKiB, importBusybox, rssKiB, startDocker, startStevedore } from './engines';
import { json } from './http-client';
import { option, row, summarize, writeReport, type Row } from './stats';

const EVENTS = option('--events', 40);
const CONTAINERS = option('--containers', 50);
/** How long the engines sit without requests before the settled figure. */
const SETTLE_S = option('--settle', 45);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A live GET /events stream; `next(id, status)` resolves when that event arrives, with the time it arrived. */
function eventStream(socket: string): { next(id: string, status: string): Promise<bigint>; close(): void } {
  const waiting = new Map<string, (t: bigint) => void>();
  const arrived = new Map<string, bigint>();
  let buffer = '';
  const req = http.get({ socketPath: socket, path: '/v1.12/events', agent: false }, (res) => {
    res.on('data', (d: Buffer) => {
      const t = process.hrtime.bigint();
      buffer += d.toString();
      // Objects one after another (Docker's have no separator): split at each `}{` or newline.
      const parts = buffer.replace(/}\s*{/g, '}\n{').split('\n');
      buffer = parts.pop() ?? '';
      for (const p of [...parts, buffer]) {
        try {
          const e = JSON.parse(p) as { id: string; status: string };
          if (p === buffer) buffer = '';
          const key = `${e.id}/${e.status}`;
          const w = waiting.get(key);
          if (w) w(t);
          else arrived.set(key, t);
        } catch {
          // not whole yet
        }
      }
    });
  });
  req.on('error', () => undefined);
  return {
    next: (id, status) => {
      const key = `${id}/${status}`;
      const t = arrived.get(key);
      return t !== undefined ? Promise.resolve(t) : new Promise((resolve) => waiting.set(key, resolve));
    },
    close: () => req.destroy(),
  };
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/bench-events-');
  const tarFile = busyboxTar(work, ['sh', 'true', 'sleep']);
  const stevedore = await startStevedore();
  // The same stack with every service in the supervisor's process (STEVEDORE_PROCESSES=one): memory only.
  const one = await startStevedore({ STEVEDORE_PROCESSES: 'one', STEVEDORE_BRIDGE: 'sdbenchone', STEVEDORE_BRIDGE_SUBNET: '10.217.0.0/24' });
  const docker = await startDocker();
  const engines = [stevedore, docker];
  const everyEngine: Array<[string, typeof stevedore]> = [['stevedore', stevedore], ['one', one], ['docker', docker]];
  const samples = new Map<string, number[]>();
  const add = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);
  try {
    for (const [, e] of everyEngine) {
      await importBusybox(e, tarFile);
    }
    process.stderr.write('bench: idle memory\n');
    await sleep(3000);
    for (let i = 0; i < 5; i++) {
      for (const [label, e] of everyEngine) {
        add(`${label} idleKiB`, rssKiB(e.pids()));
        add(`${label} idleFootprintKiB`, footprintKiB(e.pids()));
      }
    }
    // And once settled: after a while without requests V8's memory reducer gives back what start-up grew (Go's scavenger too).
    await sleep(SETTLE_S * 1000);
    for (let i = 0; i < 5; i++) {
      for (const [label, e] of everyEngine) {
        add(`${label} settledKiB`, rssKiB(e.pids()));
        add(`${label} settledFootprintKiB`, footprintKiB(e.pids()));
      }
    }

    process.stderr.write('bench: start → start event\n');
    for (const e of engines) {
      const events = eventStream(e.socket);
      await sleep(300);
      for (let i = 0; i < EVENTS; i++) {
        const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' } });
        const id = c.body.Id as string;
        const t = process.hrtime.bigint();
        const arrival = events.next(id, 'start');
        await json(e.socket, 'POST', `/v1.12/containers/${id}/start`);
        const startAnswered = process.hrtime.bigint();
        const at = await arrival;
        add(`${e.name} eventMs`, Number(at - t) / 1e6);
        add(`${e.name} afterAnswerMs`, Number(at - startAnswered) / 1e6);
      }
      events.close();
    }
    process.stderr.write(`bench: memory with ${CONTAINERS} running containers\n`);
    for (const [, e] of everyEngine) {
      const running = (await json(e.socket, 'GET', '/v1.12/containers/json')).body.length as number;
      for (let i = running; i < CONTAINERS; i++) {
        const c = await json(e.socket, 'POST', '/v1.12/containers/create', { Image: 'busybox', Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' } });
        await json(e.socket, 'POST', `/v1.12/containers/${c.body.Id}/start`);
      }
    }
    await sleep(2000);
    for (let i = 0; i < 5; i++) {
      for (const [label, e] of everyEngine) {
        add(`${label} busyKiB`, rssKiB(e.pids()));
        add(`${label} busyFootprintKiB`, footprintKiB(e.pids()));
      }
    }
    for (const [, e] of everyEngine) {
      const all = (await json(e.socket, 'GET', '/v1.12/containers/json?all=1')).body as Array<{ Id: string }>;
      await Promise.all(all.map((c) => json(e.socket, 'DELETE', `/v1.12/containers/${c.Id}?force=1`)));
    }
  } finally {
    await Promise.all(everyEngine.map(([, e]) => e.stop()));
    fs.rmSync(work, { recursive: true, force: true });
  }
  const med = (k: string) => summarize(samples.get(k)!).median;
  const rows: Row[] = [
    row('start request sent → `start` event received, median', 'ms', med('stevedore eventMs'), med('docker eventMs'), 'lower'),
    row('start request sent → `start` event received, p95', 'ms', summarize(samples.get('stevedore eventMs')!).p95, summarize(samples.get('docker eventMs')!).p95, 'lower'),
    row('start answered → `start` event received, median', 'ms', med('stevedore afterAnswerMs'), med('docker afterAnswerMs'), 'lower'),
    row('memory of the whole engine, idle (resident pages, each counted once)', 'MiB', med('stevedore idleFootprintKiB') / 1024, med('docker idleFootprintKiB') / 1024, 'lower'),
    row(`memory of the whole engine, idle for ${SETTLE_S} s more (resident pages, each counted once)`, 'MiB', med('stevedore settledFootprintKiB') / 1024, med('docker settledFootprintKiB') / 1024, 'lower'),
    row(`memory of the whole engine with ${CONTAINERS} running containers (resident pages, each counted once)`, 'MiB', med('stevedore busyFootprintKiB') / 1024, med('docker busyFootprintKiB') / 1024, 'lower'),
    row(`memory idle for ${SETTLE_S} s more, one process (resident pages, each counted once)`, 'MiB', med('one settledFootprintKiB') / 1024, med('docker settledFootprintKiB') / 1024, 'lower'),
    row('memory of the whole engine, idle (RSS)', 'MiB', med('stevedore idleKiB') / 1024, med('docker idleKiB') / 1024, 'lower'),
    row(`memory of the whole engine, idle for ${SETTLE_S} s more (RSS)`, 'MiB', med('stevedore settledKiB') / 1024, med('docker settledKiB') / 1024, 'lower'),
    row(`memory of the whole engine with ${CONTAINERS} running containers (RSS)`, 'MiB', med('stevedore busyKiB') / 1024, med('docker busyKiB') / 1024, 'lower'),
    row('memory idle, every service in one process (STEVEDORE_PROCESSES=one)', 'MiB', med('one idleKiB') / 1024, med('docker idleKiB') / 1024, 'lower'),
    row(`memory idle for ${SETTLE_S} s more, one process`, 'MiB', med('one settledKiB') / 1024, med('docker settledKiB') / 1024, 'lower'),
    row(`memory with ${CONTAINERS} running containers, one process`, 'MiB', med('one busyKiB') / 1024, med('docker busyKiB') / 1024, 'lower'),
  ];
  writeReport('events-memory', 'Events and memory benchmark', { stevedore: stevedore.version, docker: docker.version }, `Memory: Stevedore's supervisor, services, Redis and monitors, with each service in a process of its own (the default) and with every service in the supervisor's process (STEVEDORE_PROCESSES=one); the Docker engine's dockerd, containerd and shims. Two measures: the resident pages of the engine's processes, each page counted once however many processes map it (what the engine takes from the host), and the sum of the processes' RSS, which counts shared pages once per process (six Node processes each map the same ~34 MiB of Node's own code).`, rows, { settings: { events: EVENTS, containers: CONTAINERS, settleSeconds: SETTLE_S } });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
