// Network benchmark, Stevedore and the Docker engine in one run, each on a
// bridge of its own: what bridge networking adds to `docker run --rm IMAGE
// true` (bridge against --net=none, the real CLI, interleaved), and the
// throughput of a published port (a large download from busybox's httpd in a
// container, through 127.0.0.1:PORT on the host).
//
//   node bench/dist/network.js [--runs 20] [--mb 500] [--rounds 5]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { busyboxTar, importBusybox, makeBridge, startDocker, startStevedore, type Engine } from './engines';
import { option, row, summarize, writeReport, type Row } from './stats';

const RUNS = option('--runs', 20);
const MB = option('--mb', 500);
const ROUNDS = option('--rounds', 5);
const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

/** The Docker engine's bridge: made here (it is given an existing one), deleted at the end. */
const DOCKER_BRIDGE = 'sdbenchref0';
const DOCKER_BRIDGE_ADDR = '10.216.0.1/24';

function cli(e: Engine, args: string[]): string {
  const r = spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${e.socket}` }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${e.name} docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function runRm(e: Engine, network: 'bridge' | 'none'): number {
  const t = process.hrtime.bigint();
  cli(e, ['run', '--rm', `--net=${network}`, 'busybox', 'true']);
  return ms(t);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Downloads a URL, counting the bytes: MB/s. */
function download(url: string, expectBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    http
      .get(url, { agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => (bytes += d.length));
        res.on('end', () => (bytes === expectBytes ? resolve(bytes / 1e6 / (ms(t) / 1000)) : reject(new Error(`${url}: ${bytes} of ${expectBytes} bytes`))));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function waitForHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => http.get(url, { agent: false }, (res) => (res.resume(), resolve(res.statusCode === 200))).on('error', () => resolve(false)));
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered`);
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/bench-network-');
  const tarFile = busyboxTar(work, ['sh', 'true', 'mkdir', 'head', 'echo', 'httpd']);
  const deleteBridge = makeBridge(DOCKER_BRIDGE, DOCKER_BRIDGE_ADDR);
  const stevedore = await startStevedore({ STEVEDORE_BRIDGE: 'sdbench0', STEVEDORE_BRIDGE_SUBNET: '10.217.0.0/24' });
  const docker = await startDocker({ bridge: DOCKER_BRIDGE });
  const engines = [stevedore, docker];
  const samples = new Map<string, number[]>();
  const add = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);
  try {
    for (const e of engines) {
      await importBusybox(e, tarFile);
      for (const n of ['none', 'bridge'] as const) runRm(e, n); // warm-up
    }
    process.stderr.write('bench: docker run --rm, bridge and none\n');
    for (let i = 0; i < RUNS; i++) {
      for (const e of i % 2 ? [...engines].reverse() : engines) {
        for (const n of i % 2 ? (['bridge', 'none'] as const) : (['none', 'bridge'] as const)) add(`${e.name} ${n}`, runRm(e, n));
      }
    }
    process.stderr.write(`bench: a ${MB} MB download through a published port\n`);
    const bytes = MB * 1_000_000;
    const urls = new Map<Engine, string>();
    for (const e of engines) {
      const port = await freePort();
      cli(e, ['run', '-d', '--name', 'web', '-p', `${port}:80`, 'busybox', 'sh', '-c', `mkdir /w; head -c ${bytes} /dev/zero > /w/big; echo up > /w/index.html; exec httpd -f -p 80 -h /w`]);
      urls.set(e, `http://127.0.0.1:${port}/big`);
      await waitForHttp(`http://127.0.0.1:${port}/index.html`); // written after the large file
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const e of round % 2 ? [...engines].reverse() : engines) add(`${e.name} MBps`, await download(urls.get(e)!, bytes));
    }
    for (const e of engines) cli(e, ['rm', '-f', 'web']);
  } finally {
    await Promise.all(engines.map((e) => e.stop()));
    deleteBridge();
    spawnSync('ip', ['link', 'delete', 'sdbench0']);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const med = (k: string) => summarize(samples.get(k)!).median;
  const rows: Row[] = [
    row('docker run --rm busybox true, --net=none, median', 'ms', med('stevedore none'), med('docker none'), 'lower'),
    row('docker run --rm busybox true, bridge, median', 'ms', med('stevedore bridge'), med('docker bridge'), 'lower'),
    row('what the bridge adds to run --rm (median bridge − median none)', 'ms', med('stevedore bridge') - med('stevedore none'), med('docker bridge') - med('docker none'), 'lower'),
    row(`${MB} MB download through a published port on 127.0.0.1`, 'MB/s', med('stevedore MBps'), med('docker MBps'), 'higher'),
  ];
  writeReport('network', 'Network benchmark', { stevedore: stevedore.version, docker: docker.version }, `${RUNS} runs of each, interleaved. Stevedore's bridge goes through the CNI plugins (published ports by DNAT); the Docker engine is given a bridge of the benchmark's and runs without iptables, so its published ports go through its userland proxy, which is also what serves 127.0.0.1 when it manages iptables.`, rows, { settings: { runs: RUNS, mb: MB, rounds: ROUNDS }, samples: Object.fromEntries(samples) });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
