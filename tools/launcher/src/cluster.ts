// stevedore cluster up | down: a cluster on one machine, for development and
// the tests, built as separate hosts would be. A bridge carries the cluster's
// network; the cluster's services (Redis over TLS with a password, the events
// service) listen on its first address; each node is a network namespace of
// its own with its own address on the bridge, its own data root and its own
// supervisor (started inside the namespace, so its services, its containers'
// bridge and its iptables rules are all in it); each API edge is a stack of
// its own with its own socket. The image store is a cluster service: the
// nodes fetch the layers they need from it by digest. Services reach each other over TCP with mutual
// TLS, from one CA made here.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The ports every node and the cluster's services listen on (each on its own address). */
const PORTS = { redis: 6379, events: 7001, imageStore: 7002, runtime: 7003, layerBlobs: 7005 } as const;
/** Where each service serves its Prometheus metrics, on its host's address (an edge's: 9110 + its number). */
const METRICS_PORTS = { events: 9101, imageStore: 9102, runtime: 9103, buildWorker: 9104, edges: 9110 } as const;

export interface ClusterLayout {
  root: string;
  /** Short and stable for a root: names the bridge, the namespaces and the subnet. */
  id: string;
  subnet: string;
  bridge: string;
  /** The cluster services' address on the bridge. */
  head: string;
  nodes: Array<{ name: string; address: string; netns: string; veth: string; root: string }>;
  edges: Array<{ name: string; root: string; socket: string }>;
  redisPassword: string;
}

function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function exists(command: string, args: string[]): boolean {
  try {
    sh(command, args);
    return true;
  } catch {
    return false;
  }
}

/**
 * A directory of the cluster's that holds its secrets (the Redis password,
 * the CA's key): made 0700, or, when it exists, a real directory of this
 * user's that nobody else can write (one another local user made first
 * could hold a CA or a password of theirs, or links to files of root's).
 */
function ownDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory of this user's that no one else can write (it holds the cluster's keys)`);
  }
}

/** The layout of a cluster on `root`: kept in `cluster.json` once made, so `down` and a later `up` find the same one. */
export function clusterLayout(root: string, nodes: number, edges: number): ClusterLayout {
  ownDir(root);
  const file = path.join(root, 'cluster.json');
  const id = createHash('sha256').update(root).digest('hex').slice(0, 4);
  const previous = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterLayout) : undefined;
  // 10.214.0.0/16, one /24 per cluster root.
  const third = parseInt(id, 16) % 250;
  const subnet = `10.214.${third}`;
  const layout: ClusterLayout = {
    root,
    id,
    subnet: `${subnet}.0/24`,
    bridge: `sdc${id}`,
    head: `${subnet}.1`,
    nodes: Array.from({ length: nodes }, (_, i) => ({
      name: `node-${i + 1}`, address: `${subnet}.${11 + i}`, netns: `sdc${id}-n${i + 1}`, veth: `sdc${id}n${i + 1}`, root: path.join(root, 'nodes', `node-${i + 1}`),
    })),
    edges: Array.from({ length: edges }, (_, i) => ({
      name: `edge-${i + 1}`, root: path.join(root, 'edges', `edge-${i + 1}`), socket: path.join(root, 'edges', `edge-${i + 1}`, 'stevedore.sock'),
    })),
    redisPassword: previous?.redisPassword ?? randomBytes(24).toString('hex'),
  };
  // Replaced whole (a rename never follows a link).
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(layout, null, 2), { mode: 0o600, flag: 'w' });
  fs.renameSync(`${file}.tmp`, file);
  return layout;
}

export function readClusterLayout(root: string): ClusterLayout | undefined {
  const file = path.join(root, 'cluster.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterLayout) : undefined;
}

/** The bridge with the cluster services' address, and per node its namespace, its link and its address. */
export function networkUp(l: ClusterLayout): void {
  if (!exists('ip', ['link', 'show', l.bridge])) {
    sh('ip', ['link', 'add', 'name', l.bridge, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `${l.head}/24`, 'dev', l.bridge]);
  }
  sh('ip', ['link', 'set', l.bridge, 'up']);
  for (const n of l.nodes) {
    if (!fs.existsSync(`/run/netns/${n.netns}`)) sh('ip', ['netns', 'add', n.netns]);
    const inNs = (...args: string[]) => sh('ip', ['-n', n.netns, ...args]);
    if (!exists('ip', ['link', 'show', n.veth])) {
      sh('ip', ['link', 'add', n.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.netns]);
      inNs('addr', 'add', `${n.address}/24`, 'dev', 'eth0');
    }
    sh('ip', ['link', 'set', n.veth, 'master', l.bridge, 'up']);
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'set', 'eth0', 'up');
  }
}

export function networkDown(l: ClusterLayout): void {
  for (const n of l.nodes) {
    if (exists('ip', ['link', 'show', n.veth])) sh('ip', ['link', 'del', n.veth]);
    if (fs.existsSync(`/run/netns/${n.netns}`)) sh('ip', ['netns', 'del', n.netns]);
  }
  if (exists('ip', ['link', 'show', l.bridge])) sh('ip', ['link', 'del', l.bridge]);
}

/** A CA, and a certificate per party for its addresses (server and client alike); made once, kept in `<root>/certs`. */
function clusterCertificates(l: ClusterLayout): { dir: string; ca: string; cert(name: string): { cert: string; key: string } } {
  const dir = path.join(l.root, 'certs');
  ownDir(dir);
  const at = (f: string) => path.join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (!fs.existsSync(at('ca.pem'))) sh('openssl', ['req', '-x509', ...ec, '-days', '825', '-subj', `/CN=stevedore-cluster-${l.id}`, '-keyout', at('ca-key.pem'), '-out', at('ca.pem')]);
  const parties: Array<[string, string]> = [['head', l.head], ...l.nodes.map((n): [string, string] => [n.name, n.address])];
  for (const [name, address] of parties) {
    if (fs.existsSync(at(`${name}.pem`))) continue;
    sh('openssl', ['req', ...ec, '-subj', `/CN=${name}`, '-keyout', at(`${name}-key.pem`), '-out', at(`${name}.csr`)]);
    fs.writeFileSync(at(`${name}.ext`), `subjectAltName=IP:${address},IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n`);
    sh('openssl', ['x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.pem'), '-CAkey', at('ca-key.pem'), '-CAcreateserial', '-days', '825', '-extfile', at(`${name}.ext`), '-out', at(`${name}.pem`)]);
    fs.rmSync(at(`${name}.csr`));
    fs.rmSync(at(`${name}.ext`));
  }
  for (const f of fs.readdirSync(dir)) fs.chmodSync(at(f), 0o600);
  return { dir, ca: at('ca.pem'), cert: (name) => ({ cert: at(`${name}.pem`), key: at(`${name}-key.pem`) }) };
}

/** What every process of the cluster is told: where Redis, the events service, the image store and the CA are, and its own certificate. */
function commonEnv(l: ClusterLayout, ca: string, own: { cert: string; key: string }): NodeJS.ProcessEnv {
  return {
    REDIS_URL: `rediss://:${l.redisPassword}@${l.head}:${PORTS.redis}`,
    NODE_EXTRA_CA_CERTS: ca,
    STEVEDORE_EVENTS_ADDR: `${l.head}:${PORTS.events}`,
    STEVEDORE_IMAGE_STORE_ADDR: `${l.head}:${PORTS.imageStore}`,
    STEVEDORE_LAYER_BLOBS_ADDR: `${l.head}:${PORTS.layerBlobs}`,
    STEVEDORE_GRPC_TLS_CACERT: ca,
    STEVEDORE_GRPC_TLS_CERT: own.cert,
    STEVEDORE_GRPC_TLS_KEY: own.key,
  };
}

export interface RoleStack {
  name: string;
  root: string;
  env: NodeJS.ProcessEnv;
  /** Started inside this network namespace (a node's). */
  netns?: string;
}

/** The stacks of the cluster, in the order they start: the cluster's services, the nodes, the edges. */
export function clusterStacks(l: ClusterLayout): RoleStack[] {
  const certs = clusterCertificates(l);
  const head = certs.cert('head');
  const stacks: RoleStack[] = [{
    name: 'services',
    root: path.join(l.root, 'services'),
    env: {
      ...commonEnv(l, certs.ca, head),
      STEVEDORE_SERVICES: 'events,image-store',
      STEVEDORE_EVENTS_METRICS_ADDR: `${l.head}:${METRICS_PORTS.events}`,
      STEVEDORE_IMAGE_STORE_METRICS_ADDR: `${l.head}:${METRICS_PORTS.imageStore}`,
      STEVEDORE_PRIVATE_REDIS: '1',
      STEVEDORE_REDIS_TLS_LISTEN: `${l.head}:${PORTS.redis}`,
      STEVEDORE_REDIS_PASSWORD: l.redisPassword,
      STEVEDORE_REDIS_TLS_CERT: head.cert,
      STEVEDORE_REDIS_TLS_KEY: head.key,
    },
  }];
  for (const n of l.nodes) {
    stacks.push({
      name: n.name,
      root: n.root,
      netns: n.netns,
      env: {
        ...commonEnv(l, certs.ca, certs.cert(n.name)),
        STEVEDORE_SERVICES: 'container-runtime,build-worker',
        STEVEDORE_NODE_NAME: n.name,
        STEVEDORE_NODE_ADDR: n.address,
        STEVEDORE_CONTAINER_RUNTIME_ADDR: `${n.address}:${PORTS.runtime}`,
        STEVEDORE_CONTAINER_RUNTIME_METRICS_ADDR: `${n.address}:${METRICS_PORTS.runtime}`,
        STEVEDORE_BUILD_WORKER_METRICS_ADDR: `${n.address}:${METRICS_PORTS.buildWorker}`,
      },
    });
  }
  for (const e of l.edges) {
    stacks.push({
      name: e.name,
      root: e.root,
      env: {
        ...commonEnv(l, certs.ca, head),
        STEVEDORE_SERVICES: 'api-edge',
        STEVEDORE_HOST: `unix://${e.socket}`,
        STEVEDORE_API_EDGE_METRICS_ADDR: `${l.head}:${METRICS_PORTS.edges + l.edges.indexOf(e) + 1}`,
      },
    });
  }
  return stacks;
}

/** Runs the launcher's `up`, `down` or `status` for one stack (inside its namespace for a node); resolves with its output. */
export function runStackCommand(cli: string, command: 'up' | 'down' | 'status', stack: RoleStack, timeoutS: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = [cli, command, '--root', stack.root, ...(command === 'up' ? ['--timeout', String(timeoutS)] : [])];
  // Only the network namespace: a mount namespace of its own (ip netns exec makes one) would hide the node's mounts from its next start.
  const [file, argv] = stack.netns ? ['nsenter', [`--net=/run/netns/${stack.netns}`, '--', process.execPath, ...args]] : [process.execPath, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env: { ...process.env, ...stack.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
