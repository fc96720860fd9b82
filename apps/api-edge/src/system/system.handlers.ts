// GET /_ping, GET /version, GET /info, POST /auth.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { STEVEDORE_VERSION, type StevedoreConfig } from '@stevedore/config';
import { CURRENT_API_VERSION, MIN_API_VERSION, type AuthConfigJson, type InfoResponse, type VersionResponse } from '@stevedore/docker-api';
import { CONFIG } from '../nest-context';
import { invalid } from '@stevedore/errors';
import type { ApiRequest } from '../http/api-request';
import type { ApiResponse } from '../http/api-response';
import { Backends } from '../backends/backends';
import { ClusterView } from '../backends/cluster-view';
import { ContainerRouter } from '../backends/container-router';
import { clusterDriverStatus, clusterTotals } from './cluster-info';
import { authConfig } from '../http/registry-auth';

/** What info says of the runtime when no node of a cluster is up. */
const NO_RUNTIME = { containers: 0, running: 0, paused: 0, stopped: 0, ociRuntime: 'none', ociRuntimeVersion: '', memoryLimit: false, swapLimit: false, ipv4Forwarding: false, cgroupVersion: '' };

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };

/** Docker 1.0 emitted its JSON objects with sorted keys. */
function sortedKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

function operatingSystem(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

/** The ping's answer headers, as later engines send them (today's clients read Ostype and Docker-Experimental). */
const PING_HEADERS = {
  Ostype: 'linux',
  'Docker-Experimental': 'false',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
  'Content-Type': 'text/plain; charset=utf-8',
  'Content-Length': 2,
};

@Injectable()
export class SystemHandlers {
  private readonly engineId: string;
  private readonly versionBody: VersionResponse;

  constructor(
    @Inject(CONFIG) private readonly config: StevedoreConfig,
    private readonly backends: Backends,
    private readonly cluster: ClusterView,
    private readonly router: ContainerRouter,
  ) {
    this.engineId = this.readEngineId();
    this.versionBody = sortedKeys({
      ApiVersion: CURRENT_API_VERSION,
      Arch: ARCH[process.arch] ?? process.arch,
      GitCommit: this.config.gitCommit,
      GoVersion: `node ${process.version}`,
      KernelVersion: os.release(),
      MinAPIVersion: MIN_API_VERSION,
      Os: 'linux',
      Version: STEVEDORE_VERSION,
    });
  }

  /** A stable ID for this engine, kept in the data root. */
  private readEngineId(): string {
    const file = path.join(this.config.root, 'engine-id');
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      const id = randomUUID().toUpperCase();
      fs.mkdirSync(this.config.root, { recursive: true });
      fs.writeFileSync(file, `${id}\n`, { flag: 'wx', mode: 0o600 });
      return fs.readFileSync(file, 'utf8').trim();
    }
  }

  ping = (req: ApiRequest, res: ApiResponse): void => {
    // The same headers every time (HEAD: no body), made once: pings are the most frequent request.
    res.raw.writeHead(200, PING_HEADERS);
    if (req.raw.method === 'HEAD') res.raw.end();
    else res.raw.end('OK');
  };

  // Docker 1.0's engine named the job that answered in a `Job-Name` header (an artefact clients may log).
  version = (_req: ApiRequest, res: ApiResponse): void => {
    res.json(200, this.versionBody, { 'Job-Name': 'version' });
  };

  info = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const b = this.backends;
    // The host facts of a runtime that answers (in a cluster, the first node up; none when every node is down).
    const [first] = await this.router.all();
    const [runtime, store, ev, members] = await Promise.all([
      first ? first.rt.info({}, { requestId: req.requestId, timeoutMs: 5000 }) : NO_RUNTIME,
      b.images.info({}, { requestId: req.requestId, timeoutMs: 5000 }),
      b.events.info({}, { requestId: req.requestId, timeoutMs: 5000 }),
      this.cluster.members(),
    ]);
    // A cluster's counts are its nodes' (a single host has no members).
    const totals = members.length ? clusterTotals(members) : undefined;
    let nfd = 0;
    try {
      nfd = fs.readdirSync('/proc/self/fd').length;
    } catch {
      // not on Linux
    }
    const body: InfoResponse = sortedKeys({
      Architecture: os.machine(),
      CgroupVersion: runtime.cgroupVersion,
      Containers: totals?.containers ?? runtime.containers,
      ContainersPaused: totals?.paused ?? runtime.paused,
      ContainersRunning: totals?.running ?? runtime.running,
      ContainersStopped: totals?.stopped ?? runtime.stopped,
      // JSON booleans: today's CLI cannot read Docker 1.0's 0/1 here.
      Debug: this.config.debug,
      DockerRootDir: this.config.root,
      Driver: store.driver,
      DriverStatus: totals ? clusterDriverStatus(members, 'spread') : store.driverStatus.map((s): [string, string] => [s.key, s.value]),
      ExecutionDriver: `${runtime.ociRuntime}-${runtime.ociRuntimeVersion}`,
      ID: this.engineId,
      IPv4Forwarding: runtime.ipv4Forwarding,
      Images: store.images,
      IndexServerAddress: 'https://index.docker.io/v1/',
      InitPath: '',
      InitSha1: '',
      KernelVersion: os.release(),
      MemTotal: totals?.memoryBytes ?? os.totalmem(),
      MemoryLimit: runtime.memoryLimit,
      NCPU: totals?.cpus ?? os.cpus().length,
      NEventsListener: ev.listeners,
      NFd: nfd,
      // Node has no goroutines; the closest measure of concurrent work is its active resources.
      NGoroutines: process.getActiveResourcesInfo().length,
      Name: os.hostname(),
      OSType: 'linux',
      OperatingSystem: operatingSystem(),
      ServerVersion: STEVEDORE_VERSION,
      SwapLimit: runtime.swapLimit,
    });
    res.json(200, body, { 'Job-Name': 'info' });
  };

  auth = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const body = await req.json<AuthConfigJson>();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('Request body must be a JSON object (an AuthConfig)');
    const result = await this.backends.images.checkAuth(authConfig(body), { requestId: req.requestId, timeoutMs: 30_000 });
    // Always 200 with a body: today's CLI fails on Docker 1.0's bodiless 204.
    res.json(200, result.identityToken ? { IdentityToken: result.identityToken, Status: result.status } : { Status: result.status });
  };
}
