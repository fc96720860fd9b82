// A cluster on this machine for the tests (`./stevedore cluster up`), and
// the real docker CLI against one of its edges.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { processesMentioning, REPO, runCommand, shortTempDir } from './harness';

const STEVEDORE = path.join(REPO, 'stevedore');

export interface Cluster {
  root: string;
  hosts: string[];
  layout: { bridge: string; subnet: string; nodes: Array<{ name: string; address: string; netns: string; veth: string; root: string }> };
}

export function docker(host: string, args: string[], timeoutMs = 30_000) {
  return runCommand('docker', args, { env: { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: path.join(host.slice('unix://'.length), '..', 'cli'), DOCKER_BUILDKIT: '0' }, timeoutMs });
}

/** The nodes as `docker info` lists them (Swarm classic's DriverStatus): name → status. */
export async function nodeStatus(host: string): Promise<Record<string, string>> {
  const r = await docker(host, ['info', '--format', '{{json .DriverStatus}}']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<[string, string]>;
  const out: Record<string, string> = {};
  rows.forEach(([k], i) => {
    if (/^node-\d+$/.test(k)) out[k] = rows[i + 1][1];
  });
  return out;
}

/** GET on an edge's socket: the body. */
export function rawGet(host: string, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: host.slice('unix://'.length), path: urlPath }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${urlPath}: ${res.statusCode} ${text}`))));
    }).on('error', reject);
  });
}

async function stevedore(args: string[], timeoutMs = 240_000) {
  return runCommand(STEVEDORE, args, { env: { ...process.env, STEVEDORE_SKIP_SETUP: '1' }, timeoutMs });
}


/** `cluster up` of three nodes and two edges on a fresh root. */
export async function startCluster(): Promise<Cluster> {
  const root = shortTempDir('sdc-');
  const up = await stevedore(['cluster', 'up', '--root', root, '--nodes', '3', '--edges', '2']);
  assert.equal(up.code, 0, up.stderr);
  const hosts = up.stdout.trim().split('\n').map((l) => l.replace(/^DOCKER_HOST=/, ''));
  return { root, hosts, layout: JSON.parse(fs.readFileSync(path.join(root, 'cluster.json'), 'utf8')) };
}

/** `cluster up` again (what is down starts again), on the same edges. */
export async function restartCluster(cluster: Cluster): Promise<void> {
  const up = await stevedore(['cluster', 'up', '--root', cluster.root, '--nodes', '3', '--edges', '2']);
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual(up.stdout.trim().split('\n'), cluster.hosts.map((h) => `DOCKER_HOST=${h}`));
}

/** `cluster down`, which must leave no namespace, bridge or process. */
export async function stopCluster(cluster: Cluster | undefined): Promise<void> {
  if (!cluster) return;
  const down = await stevedore(['cluster', 'down', '--root', cluster.root]);
  assert.equal(down.code, 0, down.stderr);
  const l = cluster.layout;
  for (const n of l.nodes) assert.equal(fs.existsSync(`/run/netns/${n.netns}`), false, `namespace ${n.netns} left`);
  assert.equal((await runCommand('ip', ['link', 'show', l.bridge])).code !== 0, true, `bridge ${l.bridge} left`);
  assert.deepEqual(processesMentioning(cluster.root), [], 'a process of the cluster outlived down');
}

/** SIGKILL of a node's supervisor and services (its containers' processes go on, as after a crash of the engine). */
export function killNode(node: Cluster['layout']['nodes'][number]): void {
  const state = JSON.parse(fs.readFileSync(path.join(node.root, 'run', 'state.json'), 'utf8')) as { supervisorPid: number; processes: Array<{ pid: number | null }> };
  process.kill(state.supervisorPid, 'SIGKILL');
  for (const p of state.processes) if (p.pid) process.kill(p.pid, 'SIGKILL');
}
