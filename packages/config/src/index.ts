// Settings shared by every Stevedore process. Each setting has one
// environment name (scripts rely on them) and, in the launcher, a flag.
import { createHash } from 'node:crypto';
import * as path from 'node:path';

export const STEVEDORE_VERSION = '0.1.0';

/** The gRPC services, in the order the launcher starts them. */
export const GRPC_SERVICES = ['events', 'image-store', 'container-runtime', 'build-worker'] as const;
export type GrpcServiceName = (typeof GRPC_SERVICES)[number];
export const SERVICES = [...GRPC_SERVICES, 'api-edge'] as const;
export type ServiceName = (typeof SERVICES)[number];

export type OciRuntimeChoice = 'auto' | 'runc' | 'crun';

export interface TlsFiles {
  cert?: string;
  key?: string;
  /** CA that client certificates must be signed by; set = clients must present one. */
  ca?: string;
}

export interface StevedoreConfig {
  /** Data root: everything Stevedore stores lives below it. */
  root: string;
  /** Where the API listens: unix:///path or tcp://host:port (TCP only with TLS). */
  hosts: string[];
  /** The Redis every service shares. */
  redisUrl: string;
  /** Key prefix in Redis, so that stacks sharing one Redis stay apart. */
  redisPrefix: string;
  runtime: OciRuntimeChoice;
  logLevel: string;
  debug: boolean;
  /** TLS for TCP API listeners. */
  apiTls: TlsFiles;
  /**
   * TLS without client certificates on TCP listeners: anyone who reaches the
   * port drives the engine, root's powers. Refused unless this is set, and
   * warned about at every start when it is.
   */
  apiTlsUnsafeNoClientCerts: boolean;
  /** How long a client may take to send a request's headers; a body (an upload) is bounded by size, never by time. */
  apiHeadersTimeoutMs: number;
  /**
   * Output an attach client may leave untaken in the API edge's memory;
   * past it, what comes next waits for the client in a spool file of up to
   * `attachSpoolBytes`, and past that the client is cut off: the container,
   * its log and other clients never wait for one client.
   */
  attachBacklogBytes: number;
  attachSpoolBytes: number;
  /** Mutual TLS between services over TCP. */
  grpcTls: TlsFiles;
  events: { maxCount: number; maxAgeSeconds: number };
  /**
   * Bridge networking: the bridge's name and its IPv4 subnet (two stacks on one
   * host need their own); `icc` false lets only links pass between containers.
   */
  bridge: { name: string; subnet: string; icc: boolean };
  /** Build-worker processes `stevedore up` starts on this host. */
  buildWorkers: number;
  /** Docker's `--api-enable-cors`: the CORS headers on every answer. */
  apiCors: boolean;
  /**
   * `many`: each service in a process of its own, restarted alone when it
   * dies; `one`: every service inside the supervisor's process (a small
   * host's memory; a crash takes the whole stack down, as dockerd's does).
   */
  processes: 'many' | 'one';
  /**
   * How long a supervised process may fail its health check in a row (from
   * its start, or from the first failed probe after a good one) before the
   * supervisor kills it and starts it again, as if it had died.
   */
  healthRestartAfterMs: number;
  /**
   * Container logs (Docker's json-file format): the container's output per
   * file (its bytes, not the JSON's), and files kept, the current one
   * included. The default keeps at least the last 100 MiB of output.
   */
  containerLogs: { maxSizeBytes: number; maxFiles: number };
  /** A build worker: builds it runs at once, and the largest context it accepts (bytes, decompressed). */
  build: { concurrency: number; contextMaxBytes: number };
  /** Docker's seccomp profile (JSON) for containers that are not privileged; the runtime does not start without it. */
  seccompProfile: string;
  /** On a host with AppArmor: the Go template, as Docker ships it, of the containers' profile. */
  appArmorTemplate: string;
  /** Registries (`host:port`) spoken to over plain HTTP; loopback ones always are. */
  insecureRegistries: string[];
  /** The commit the engine was built from, shown by `docker version`. */
  gitCommit: string;
  /** Extra `node` flags for every service process (profiling). */
  nodeArgs: string[];
  /** The address a gRPC service listens on and is reached at. */
  serviceAddress(name: GrpcServiceName): string;
  /**
   * Where the image store serves layer blobs to a cluster's nodes (IPv4:port,
   * HTTPS with the services' mutual TLS); set on the store and on the nodes.
   */
  layerBlobsAddress?: string;
  /** Where a service serves its Prometheus metrics (`GET /metrics`, host:port); none unless set. */
  metricsAddress(name: ServiceName): string | undefined;
  /** Where a cluster's edges put a new container: spread (the node with the fewest containers that run or will) or binpack (the most). */
  placement: 'spread' | 'binpack';
  /** The services (and so the processes) this host's `stevedore up` runs: every one, or a cluster role's. */
  services: ServiceName[];
  /** Set on a cluster's node: the name it joins under, the address other hosts reach it at, its labels (for constraints). */
  node?: { name: string; address: string; labels: Record<string, string> };
  /**
   * The private Redis also listening on TCP with TLS and a password, for a
   * cluster's other hosts (a unix socket reaches only this one).
   */
  redisTls?: { listen: string; password: string; cert: string; key: string };
  runDir: string;
  logDir: string;
}

export const DEFAULT_ROOT = '/var/lib/stevedore';

/**
 * Where a data root's sockets go when a path below its run directory would
 * be too long for a unix socket: /run/stevedore/<8 hex digits of the root's hash>.
 */
export function shortRunDir(dataRoot: string): string {
  return path.join('/run/stevedore', createHash('sha256').update(dataRoot).digest('hex').slice(0, 8));
}
/** Where `./stevedore setup` puts Docker's seccomp profile and AppArmor template. */
export const DEFAULT_SECCOMP_PROFILE = '/usr/local/share/stevedore/seccomp-default.json';
export const DEFAULT_APPARMOR_TEMPLATE = '/usr/local/share/stevedore/apparmor-template.go';

function list(raw: string | undefined, separator: string | RegExp): string[] {
  return (raw ?? '').split(separator).map((s) => s.trim()).filter(Boolean);
}

function metricsEnvName(service: ServiceName): string {
  return `STEVEDORE_${service.toUpperCase().replace(/-/g, '_')}_METRICS_ADDR`;
}

function envName(service: GrpcServiceName): string {
  return `STEVEDORE_${service.toUpperCase().replace(/-/g, '_')}_ADDR`;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return n;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && !['', '0', 'false', 'no', 'off'].includes(v.trim().toLowerCase());
}

/**
 * Whoever can write to the shared Redis can queue builds and forge events,
 * so a Redis reached over TCP must ask for a password, and off this host
 * the connection must be TLS (rediss://; a private CA is given to Node with
 * NODE_EXTRA_CA_CERTS). A unix socket is guarded by its file mode.
 */
export function checkRedisUrl(url: string): string {
  if (url.startsWith('unix://')) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`REDIS_URL must be unix:///path, redis:// or rediss://, not ${JSON.stringify(url)}`);
  }
  // Written exactly so: the client decides on TLS from the URL's text, not from a parsed scheme.
  if (!url.startsWith('redis://') && !url.startsWith('rediss://')) throw new Error(`REDIS_URL must be unix:///path, redis:// or rediss:// (in lower case), not ${parsed.protocol}`);
  if (!parsed.password) throw new Error('REDIS_URL reaches Redis over TCP without a password: give one (redis://:PASSWORD@host:port) and set requirepass on the server');
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (!loopback && parsed.protocol !== 'rediss:') throw new Error(`REDIS_URL reaches ${host}, off this host, without TLS: use rediss://`);
  return url;
}

function servicesOf(raw: string | undefined): ServiceName[] {
  if (!raw) return [...SERVICES];
  const names = list(raw, ',');
  for (const n of names) if (!(SERVICES as readonly string[]).includes(n)) throw new Error(`STEVEDORE_SERVICES names ${JSON.stringify(n)}, which is not one of ${SERVICES.join(', ')}`);
  return SERVICES.filter((s) => names.includes(s));
}

function nodeOf(env: NodeJS.ProcessEnv): StevedoreConfig['node'] {
  const name = env.STEVEDORE_NODE_NAME;
  if (!name) return undefined;
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/i.test(name)) throw new Error(`STEVEDORE_NODE_NAME must be letters, digits, '.', '_' or '-' (at most 63), not ${JSON.stringify(name)}`);
  const address = env.STEVEDORE_NODE_ADDR ?? '';
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) throw new Error(`STEVEDORE_NODE_ADDR must be the IPv4 address other hosts reach node ${name} at, not ${JSON.stringify(address)}`);
  const labels: Record<string, string> = {};
  for (const entry of list(env.STEVEDORE_NODE_LABELS, ',')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new Error(`STEVEDORE_NODE_LABELS takes key=value pairs separated by commas, not ${JSON.stringify(entry)}`);
    labels[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { name, address, labels };
}

function placementOf(raw: string | undefined): StevedoreConfig['placement'] {
  const v = raw || 'spread';
  if (v !== 'spread' && v !== 'binpack') throw new Error(`STEVEDORE_PLACEMENT must be spread or binpack, not ${JSON.stringify(v)}`);
  return v;
}

function addressOf(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  if (!value) return undefined;
  if (!/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(value)) throw new Error(`${name} must be IPv4:port, not ${JSON.stringify(value)}`);
  return value;
}

function redisTlsOf(env: NodeJS.ProcessEnv): StevedoreConfig['redisTls'] {
  const listen = env.STEVEDORE_REDIS_TLS_LISTEN;
  if (!listen) return undefined;
  const password = env.STEVEDORE_REDIS_PASSWORD ?? '';
  const cert = env.STEVEDORE_REDIS_TLS_CERT ?? '';
  const key = env.STEVEDORE_REDIS_TLS_KEY ?? '';
  if (!/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(listen)) throw new Error(`STEVEDORE_REDIS_TLS_LISTEN must be IPv4:port, not ${JSON.stringify(listen)}`);
  if (password.length < 16) throw new Error('STEVEDORE_REDIS_TLS_LISTEN needs STEVEDORE_REDIS_PASSWORD, at least 16 characters');
  if (!cert || !key) throw new Error('STEVEDORE_REDIS_TLS_LISTEN needs STEVEDORE_REDIS_TLS_CERT and STEVEDORE_REDIS_TLS_KEY');
  return { listen, password, cert, key };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): StevedoreConfig {
  const root = path.resolve(env.STEVEDORE_ROOT || DEFAULT_ROOT);
  const runDir = path.join(root, 'run');
  const hosts = (env.STEVEDORE_HOST || `unix://${path.join(root, 'stevedore.sock')}`)
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const runtime = (env.STEVEDORE_RUNTIME || 'auto') as OciRuntimeChoice;
  if (!['auto', 'runc', 'crun'].includes(runtime)) {
    throw new Error(`STEVEDORE_RUNTIME must be runc or crun, not ${JSON.stringify(runtime)}`);
  }
  const bridgeName = env.STEVEDORE_BRIDGE || 'stevedore0';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridgeName)) throw new Error(`STEVEDORE_BRIDGE must be an interface name of at most 15 characters, not ${JSON.stringify(bridgeName)}`);
  const bridgeSubnet = env.STEVEDORE_BRIDGE_SUBNET || '172.29.0.0/16';
  if (!/^\d{1,3}(\.\d{1,3}){3}\/(8|9|[12]\d|30)$/.test(bridgeSubnet)) throw new Error(`STEVEDORE_BRIDGE_SUBNET must be an IPv4 subnet such as 172.29.0.0/16, not ${JSON.stringify(bridgeSubnet)}`);
  const buildWorkers = positiveInt(env, 'STEVEDORE_BUILD_WORKERS', 1);
  if (buildWorkers > 64) throw new Error(`STEVEDORE_BUILD_WORKERS must be a number of workers from 1 to 64, not ${buildWorkers}`);
  const processes = env.STEVEDORE_PROCESSES || 'many';
  if (processes !== 'many' && processes !== 'one') throw new Error(`STEVEDORE_PROCESSES must be many or one, not ${JSON.stringify(processes)}`);
  if (processes === 'one' && buildWorkers > 1) throw new Error('STEVEDORE_PROCESSES=one runs one build worker: STEVEDORE_BUILD_WORKERS cannot be more than 1');
  const icc = env.STEVEDORE_ICC ?? 'true';
  if (!['true', 'false'].includes(icc)) throw new Error(`STEVEDORE_ICC must be true or false, not ${JSON.stringify(icc)}`);
  return {
    root,
    hosts,
    redisUrl: checkRedisUrl(env.REDIS_URL || `unix://${path.join(runDir, 'redis.sock')}`),
    redisPrefix: env.STEVEDORE_REDIS_PREFIX || 'stevedore:',
    runtime,
    logLevel: env.STEVEDORE_LOG_LEVEL || 'info',
    debug: truthy(env.STEVEDORE_DEBUG),
    apiTls: { cert: env.STEVEDORE_TLS_CERT, key: env.STEVEDORE_TLS_KEY, ca: env.STEVEDORE_TLS_CACERT },
    apiTlsUnsafeNoClientCerts: truthy(env.STEVEDORE_TLS_UNSAFE_NO_CLIENT_CERTS),
    apiHeadersTimeoutMs: positiveInt(env, 'STEVEDORE_API_HEADERS_TIMEOUT', 60_000),
    attachBacklogBytes: positiveInt(env, 'STEVEDORE_ATTACH_BACKLOG', 16 * 1024 * 1024),
    attachSpoolBytes: positiveInt(env, 'STEVEDORE_ATTACH_SPOOL', 256 * 1024 * 1024),
    grpcTls: { cert: env.STEVEDORE_GRPC_TLS_CERT, key: env.STEVEDORE_GRPC_TLS_KEY, ca: env.STEVEDORE_GRPC_TLS_CACERT },
    events: {
      maxCount: positiveInt(env, 'STEVEDORE_EVENTS_MAX_COUNT', 100_000),
      maxAgeSeconds: positiveInt(env, 'STEVEDORE_EVENTS_MAX_AGE', 7 * 24 * 3600),
    },
    bridge: { name: bridgeName, subnet: bridgeSubnet, icc: icc === 'true' },
    buildWorkers,
    apiCors: truthy(env.STEVEDORE_API_CORS),
    processes,
    healthRestartAfterMs: positiveInt(env, 'STEVEDORE_HEALTH_RESTART_AFTER', 30_000),
    containerLogs: {
      maxSizeBytes: positiveInt(env, 'STEVEDORE_LOG_MAX_SIZE', 20 * 1024 * 1024),
      maxFiles: positiveInt(env, 'STEVEDORE_LOG_MAX_FILES', 6),
    },
    build: {
      concurrency: positiveInt(env, 'STEVEDORE_BUILD_CONCURRENCY', 2),
      contextMaxBytes: positiveInt(env, 'STEVEDORE_BUILD_CONTEXT_MAX', 4 * 1024 ** 3),
    },
    seccompProfile: env.STEVEDORE_SECCOMP_PROFILE || DEFAULT_SECCOMP_PROFILE,
    appArmorTemplate: env.STEVEDORE_APPARMOR_TEMPLATE || DEFAULT_APPARMOR_TEMPLATE,
    insecureRegistries: list(env.STEVEDORE_INSECURE_REGISTRIES, ','),
    gitCommit: env.STEVEDORE_GIT_COMMIT || 'unknown',
    nodeArgs: list(env.STEVEDORE_NODE_ARGS, /\s+/),
    serviceAddress: (name) => env[envName(name)] || `unix:${path.join(runDir, `${name}.sock`)}`,
    layerBlobsAddress: addressOf(env, 'STEVEDORE_LAYER_BLOBS_ADDR'),
    placement: placementOf(env.STEVEDORE_PLACEMENT),
    metricsAddress: ((addresses) => (name: ServiceName) => addresses.get(name))(new Map(SERVICES.map((n) => [n, addressOf(env, metricsEnvName(n))]))),
    services: servicesOf(env.STEVEDORE_SERVICES),
    node: nodeOf(env),
    redisTls: redisTlsOf(env),
    runDir,
    logDir: path.join(root, 'logs'),
  };
}

/** The environment that reproduces a config in a child process. */
export function configToEnv(config: StevedoreConfig): Record<string, string> {
  const env: Record<string, string> = {
    STEVEDORE_ROOT: config.root,
    STEVEDORE_HOST: config.hosts.join(','),
    REDIS_URL: config.redisUrl,
    STEVEDORE_REDIS_PREFIX: config.redisPrefix,
    STEVEDORE_RUNTIME: config.runtime,
    STEVEDORE_LOG_LEVEL: config.logLevel,
    STEVEDORE_EVENTS_MAX_COUNT: String(config.events.maxCount),
    STEVEDORE_EVENTS_MAX_AGE: String(config.events.maxAgeSeconds),
    STEVEDORE_BRIDGE: config.bridge.name,
    STEVEDORE_BRIDGE_SUBNET: config.bridge.subnet,
    STEVEDORE_ICC: String(config.bridge.icc),
    STEVEDORE_BUILD_WORKERS: String(config.buildWorkers),
    STEVEDORE_PROCESSES: config.processes,
    STEVEDORE_HEALTH_RESTART_AFTER: String(config.healthRestartAfterMs),
  };
  if (config.debug) env.STEVEDORE_DEBUG = '1';
  if (config.apiCors) env.STEVEDORE_API_CORS = '1';
  if (config.apiTlsUnsafeNoClientCerts) env.STEVEDORE_TLS_UNSAFE_NO_CLIENT_CERTS = '1';
  env.STEVEDORE_API_HEADERS_TIMEOUT = String(config.apiHeadersTimeoutMs);
  env.STEVEDORE_LOG_MAX_SIZE = String(config.containerLogs.maxSizeBytes);
  env.STEVEDORE_LOG_MAX_FILES = String(config.containerLogs.maxFiles);
  env.STEVEDORE_BUILD_CONCURRENCY = String(config.build.concurrency);
  env.STEVEDORE_BUILD_CONTEXT_MAX = String(config.build.contextMaxBytes);
  env.STEVEDORE_SECCOMP_PROFILE = config.seccompProfile;
  env.STEVEDORE_APPARMOR_TEMPLATE = config.appArmorTemplate;
  if (config.insecureRegistries.length) env.STEVEDORE_INSECURE_REGISTRIES = config.insecureRegistries.join(',');
  env.STEVEDORE_GIT_COMMIT = config.gitCommit;
  if (config.nodeArgs.length) env.STEVEDORE_NODE_ARGS = config.nodeArgs.join(' ');
  env.STEVEDORE_ATTACH_BACKLOG = String(config.attachBacklogBytes);
  env.STEVEDORE_ATTACH_SPOOL = String(config.attachSpoolBytes);
  for (const name of GRPC_SERVICES) env[envName(name)] = config.serviceAddress(name);
  env.STEVEDORE_SERVICES = config.services.join(',');
  env.STEVEDORE_PLACEMENT = config.placement;
  for (const name of SERVICES) {
    const metrics = config.metricsAddress(name);
    if (metrics) env[metricsEnvName(name)] = metrics;
  }
  if (config.layerBlobsAddress) env.STEVEDORE_LAYER_BLOBS_ADDR = config.layerBlobsAddress;
  if (config.node) {
    env.STEVEDORE_NODE_NAME = config.node.name;
    env.STEVEDORE_NODE_ADDR = config.node.address;
    env.STEVEDORE_NODE_LABELS = Object.entries(config.node.labels).map(([k, v]) => `${k}=${v}`).join(',');
  }
  if (config.redisTls) {
    env.STEVEDORE_REDIS_TLS_LISTEN = config.redisTls.listen;
    env.STEVEDORE_REDIS_PASSWORD = config.redisTls.password;
    env.STEVEDORE_REDIS_TLS_CERT = config.redisTls.cert;
    env.STEVEDORE_REDIS_TLS_KEY = config.redisTls.key;
  }
  const tls: Array<[string, string | undefined]> = [
    ['STEVEDORE_TLS_CERT', config.apiTls.cert],
    ['STEVEDORE_TLS_KEY', config.apiTls.key],
    ['STEVEDORE_TLS_CACERT', config.apiTls.ca],
    ['STEVEDORE_GRPC_TLS_CERT', config.grpcTls.cert],
    ['STEVEDORE_GRPC_TLS_KEY', config.grpcTls.key],
    ['STEVEDORE_GRPC_TLS_CACERT', config.grpcTls.ca],
  ];
  for (const [k, v] of tls) if (v) env[k] = v;
  return env;
}
