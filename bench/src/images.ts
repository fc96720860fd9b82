// Image benchmark: import, save and load of a 200 MB root filesystem (MB/s),
// a pull of it from a local registry (Debian's docker-registry on
// 127.0.0.1, through the CLI), and GET /images/json with 1,000 images,
// Stevedore and the Docker engine measured in one run, interleaved.
//
//   node bench/dist/images.js [--mb 200] [--rounds 3] [--images 1000]
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { startRegistry } from '@stevedore/e2e/dist/harness';
import { startDocker, startStevedore, type Engine } from './engines';
import { download, send } from './http-client';
import { option, row, summarize, writeReport, type Row } from './stats';

const MB = option('--mb', 200);
const ROUNDS = option('--rounds', 3);
const IMAGES = option('--images', 1000);

/** A busybox root filesystem padded with incompressible files to the size asked. */
function makeRootfs(dir: string): string {
  const root = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  for (const a of ['sh', 'ls', 'cat', 'echo', 'true']) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  const data = path.join(root, 'usr', 'share', 'data');
  fs.mkdirSync(data, { recursive: true });
  for (let i = 0; i < MB; i++) fs.writeFileSync(path.join(data, `blob-${i}.bin`), randomBytes(1024 * 1024));
  const tarFile = path.join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', root, '-cf', tarFile, '.']);
  fs.rmSync(root, { recursive: true, force: true });
  return tarFile;
}

function tinyTar(dir: string, i: number): string {
  const d = path.join(dir, `tiny-${i}`);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'id'), `${i}\n`);
  const file = `${d}.tar`;
  execFileSync('tar', ['-C', d, '-cf', file, '.']);
  fs.rmSync(d, { recursive: true, force: true });
  return file;
}

const seconds = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;

async function round(e: Engine, tarFile: string, n: number, work: string): Promise<{ importS: number; saveS: number; loadS: number }> {
  let t = process.hrtime.bigint();
  const imported = await send(e.socket, 'POST', `/v1.12/images/create?fromSrc=-&repo=bench&tag=r${n}`, { file: tarFile });
  if (imported.status !== 200 || /error/i.test(imported.body)) throw new Error(`${e.name} import: ${imported.status} ${imported.body.slice(0, 300)}`);
  const importS = seconds(t);
  const saved = path.join(work, `${e.name}-save.tar`);
  t = process.hrtime.bigint();
  await download(e.socket, `/v1.12/images/get?names=bench:r${n}`, saved);
  const saveS = seconds(t);
  const removed = await send(e.socket, 'DELETE', `/v1.12/images/bench:r${n}`);
  if (removed.status !== 200) throw new Error(`${e.name} rmi: ${removed.status} ${removed.body}`);
  t = process.hrtime.bigint();
  const loaded = await send(e.socket, 'POST', '/v1.12/images/load', { file: saved });
  if (loaded.status !== 200) throw new Error(`${e.name} load: ${loaded.status} ${loaded.body}`);
  const loadS = seconds(t);
  await send(e.socket, 'DELETE', `/v1.12/images/bench:r${n}`);
  fs.rmSync(saved, { force: true });
  return { importS, saveS, loadS };
}

function cli(e: Engine, args: string[]): void {
  const r = spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${e.socket}` }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${e.name} docker ${args.join(' ')}: ${r.stderr}`);
}

/** Seconds to pull `name` (absent before) through the CLI. */
function pullSeconds(e: Engine, name: string): number {
  const t = process.hrtime.bigint();
  cli(e, ['pull', '-q', name]);
  const s = seconds(t);
  cli(e, ['rmi', name]);
  return s;
}

async function listLatency(e: Engine, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (let i = 0; i < 5; i++) await send(e.socket, 'GET', '/v1.12/images/json', { agent });
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = await send(e.socket, 'GET', '/v1.12/images/json', { agent });
    out.push(seconds(t) * 1000);
    if (r.status !== 200) throw new Error(`${e.name} list: ${r.status}`);
  }
  agent.destroy();
  return out;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/bench-images-');
  process.stderr.write(`bench: making a ${MB} MB root filesystem\n`);
  const tarFile = makeRootfs(work);
  const sizeMB = fs.statSync(tarFile).size / 1e6;
  const [stevedore, docker] = [await startStevedore(), await startDocker()];
  const engines = [stevedore, docker];
  const results = new Map<string, number[]>();
  const add = (k: string, v: number) => results.set(k, [...(results.get(k) ?? []), v]);
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const e of r % 2 ? [...engines].reverse() : engines) {
        const x = await round(e, tarFile, r, work);
        add(`${e.name} import`, sizeMB / x.importS);
        add(`${e.name} save`, sizeMB / x.saveS);
        add(`${e.name} load`, sizeMB / x.loadS);
        process.stderr.write(`bench: ${e.name} round ${r}: import ${x.importS.toFixed(2)} s, save ${x.saveS.toFixed(2)} s, load ${x.loadS.toFixed(2)} s\n`);
      }
    }
    // One image in the registry, pushed by Stevedore; each engine pulls it, then removes it.
    const registry = await startRegistry();
    try {
      const name = `${registry.address}/bench/pull:v1`;
      const imported = await send(stevedore.socket, 'POST', `/v1.12/images/create?fromSrc=-&repo=${registry.address}/bench/pull&tag=v1`, { file: tarFile });
      if (imported.status !== 200) throw new Error(`import for the registry: ${imported.status}`);
      cli(stevedore, ['push', '-q', name]);
      cli(stevedore, ['rmi', name]);
      for (let r = 0; r < ROUNDS; r++) {
        for (const e of r % 2 ? [...engines].reverse() : engines) {
          const s = pullSeconds(e, name);
          add(`${e.name} pull`, sizeMB / s);
          process.stderr.write(`bench: ${e.name} pull ${r}: ${s.toFixed(2)} s\n`);
        }
      }
    } finally {
      await registry.stop();
    }
    process.stderr.write(`bench: importing ${IMAGES} small images into each engine\n`);
    const tiny = Array.from({ length: IMAGES }, (_, i) => tinyTar(work, i));
    for (const e of engines) {
      for (let i = 0; i < IMAGES; i++) {
        const r = await send(e.socket, 'POST', `/v1.12/images/create?fromSrc=-&repo=many&tag=t${i}`, { file: tiny[i] });
        if (r.status !== 200) throw new Error(`${e.name} import ${i}: ${r.status}`);
      }
    }
    for (let r = 0; r < ROUNDS; r++) for (const e of r % 2 ? [...engines].reverse() : engines) for (const v of await listLatency(e, 20)) add(`${e.name} list`, v);
  } finally {
    await Promise.all(engines.map((e) => e.stop()));
    fs.rmSync(work, { recursive: true, force: true });
  }
  const med = (k: string) => summarize(results.get(k)!).median;
  const rows: Row[] = [
    row(`import of a ${MB} MB rootfs`, 'MB/s', med('stevedore import'), med('docker import'), 'higher'),
    row(`save of it`, 'MB/s', med('stevedore save'), med('docker save'), 'higher'),
    row(`load of it`, 'MB/s', med('stevedore load'), med('docker load'), 'higher'),
    row(`pull of it from a registry on 127.0.0.1`, 'MB/s', med('stevedore pull'), med('docker pull'), 'higher'),
    row(`GET /images/json, ${IMAGES} images, median`, 'ms', med('stevedore list'), med('docker list'), 'lower'),
    row(`GET /images/json, ${IMAGES} images, p95`, 'ms', summarize(results.get('stevedore list')!).p95, summarize(results.get('docker list')!).p95, 'lower'),
  ];
  writeReport('images', 'Image benchmark', { stevedore: stevedore.version, docker: docker.version }, `${ROUNDS} rounds interleaved; medians.`, rows, { settings: { mb: MB, rounds: ROUNDS, images: IMAGES } });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
