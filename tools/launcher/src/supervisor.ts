// The supervisor `stevedore up` leaves running: the private Redis and one
// process per service, restarted with back-off when one dies or stays
// unhealthy (or, with STEVEDORE_PROCESSES=one, every service inside this
// process), their health probed, the API's sockets held across the API
// edge's restarts, and the stack's state written to run/state.json.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { GRPC_SERVICES, loadConfig, type StevedoreConfig } from '@stevedore/config';
import { API_LISTEN_FDS_ENV, channelCredentials, checkTcpApiTls, parseApiHost, privateDir, probeHealth, serviceContext } from '@stevedore/service-kit';
import { HeldApiSockets } from './api-sockets';
import { dockerHost, launcherFiles, serviceEntry, type StackState } from './layout';
import { InProcessService } from './in-process';
import { ManagedProcess } from './managed-process';

/**
 * Probing while the stack comes up or a process is unhealthy, and once all
 * are healthy (a death is noticed by the exit; a hang by the probes, which
 * then come every STARTUP_PROBE_MS until STEVEDORE_HEALTH_RESTART_AFTER).
 */
const STARTUP_PROBE_MS = 500;
const STEADY_PROBE_MS = 5000;

/** Sends PING on a unix socket (Redis), after AUTH when it has a password, and waits for +PONG. */
function pingRedis(socketPath: string, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write(password ? `AUTH ${password}\r\nPING\r\n` : 'PING\r\n'));
    let answer = '';
    s.on('data', (d) => {
      answer += d.toString();
      if (answer.includes('+PONG')) done(true);
      else if (answer.includes('-')) done(false);
    });
  });
}

/**
 * GET /_ping on a unix socket of the API; on a TLS TCP listener, that an edge
 * answers the TLS handshake. (A connection alone proves nothing: the socket
 * is the supervisor's and takes connections into its backlog with no edge.)
 * Without a client certificate the handshake ends in the edge's refusal,
 * which is an answer too.
 */
function pingApi(host: string): Promise<boolean> {
  const target = parseApiHost(host);
  if (target.kind === 'tcp') {
    return new Promise((resolve) => {
      const hostname = target.hostname === '0.0.0.0' ? '127.0.0.1' : target.hostname === '::' ? '::1' : target.hostname;
      const s = tls.connect({ host: hostname, port: target.port, rejectUnauthorized: false, servername: net.isIP(hostname) ? undefined : hostname });
      const done = (ok: boolean) => {
        s.destroy();
        resolve(ok);
      };
      s.setTimeout(1000, () => done(false));
      s.on('secureConnect', () => done(true));
      s.on('error', (err: NodeJS.ErrnoException) => done(String(err.code).startsWith('ERR_SSL_')));
    });
  }
  return new Promise((resolve) => {
    const s = net.connect(target.path);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('GET /_ping HTTP/1.1\r\nHost: stevedore\r\nConnection: close\r\n\r\n'));
    s.on('data', (d) => done(d.toString().startsWith('HTTP/1.1 200')));
  });
}

class Supervisor {
  private readonly files: ReturnType<typeof launcherFiles>;
  private readonly processes: Array<ManagedProcess | InProcessService> = [];
  private redis?: ManagedProcess;
  /** The API's listening sockets, for every API edge process in turn (not with STEVEDORE_PROCESSES=one). */
  private apiSockets?: HeldApiSockets;
  private readonly log = serviceContext('supervisor').log;
  private ready = false;
  private healthTimer?: NodeJS.Timeout;
  private writePending = false;

  constructor(private readonly config: StevedoreConfig) {
    this.files = launcherFiles(config);
  }

  private writeState(): void {
    if (this.writePending) return;
    this.writePending = true;
    setImmediate(() => {
      this.writePending = false;
      const state: StackState = {
        supervisorPid: process.pid,
        ready: this.ready,
        dockerHost: dockerHost(this.config),
        processes: [...(this.redis ? [this.redis] : []), ...this.processes].map((p) => p.state),
        updatedAt: new Date().toISOString(),
      };
      const tmp = `${this.files.state}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(state, null, 2), { mode: 0o600 });
      fs.renameSync(tmp, this.files.state);
    });
  }

  async start(): Promise<void> {
    fs.writeFileSync(this.files.pid, `${process.pid}\n`, { mode: 0o600 });
    const env = { ...process.env };
    const healthRestartAfterMs = this.config.healthRestartAfterMs;
    const logFile = (name: string) => `${this.config.logDir}/${name}.log`;

    if (process.env.STEVEDORE_PRIVATE_REDIS === '1') {
      privateDir(this.files.redisDir);
      this.redis = new ManagedProcess(
        {
          name: 'redis',
          command: 'redis-server',
          args: [
            '--port', '0',
            '--unixsocket', this.files.redisSocket,
            '--unixsocketperm', '600',
            '--dir', this.files.redisDir,
            '--appendonly', 'yes',
            '--appendfsync', 'everysec',
            '--save', '',
            '--daemonize', 'no',
            '--logfile', '',
            ...this.redisTlsArgs(),
          ],
          env,
          logFile: logFile('redis'),
          // Its append-only files are the stack's state: root's alone, whatever this process's umask.
          umask: 0o077,
          healthRestartAfterMs,
        },
        () => this.writeState(),
        this.log,
      );
      this.redis.start();
      const deadline = Date.now() + 20_000;
      while (!(await pingRedis(this.files.redisSocket, this.config.redisTls?.password))) {
        if (Date.now() > deadline) throw new Error('the private redis-server did not start (see logs/redis.log)');
        await new Promise((r) => setTimeout(r, 50));
      }
      this.redis.setHealth(true);
    }

    const services = this.config.services;
    if (this.config.processes === 'one') {
      // Started one after the other, in the order the separate processes are; the API edge last.
      for (const name of services) {
        const s = new InProcessService(name, () => this.writeState());
        this.processes.push(s);
        await s.start();
      }
      return this.scheduleProbes();
    }
    // Every API edge process in turn serves the sockets this process holds: the API is never refused while one restarts.
    for (const host of this.config.hosts) if (parseApiHost(host).kind === 'tcp') checkTcpApiTls(host, this.config.apiTls, this.config.apiTlsUnsafeNoClientCerts);
    if (services.includes('api-edge')) this.apiSockets = await HeldApiSockets.bind(this.config.hosts);
    // Extra node flags for the services, for profiling (e.g. `--cpu-prof --cpu-prof-dir=DIR`).
    const nodeArgs = this.config.nodeArgs;
    for (const name of services) {
      // STEVEDORE_BUILD_WORKERS build workers take jobs from the one queue; the second and later listen on addresses of their own.
      const copies = name === 'build-worker' ? this.config.buildWorkers : 1;
      for (let i = 1; i <= copies; i++) {
        const instance = i === 1 ? name : `${name}-${i}`;
        const own = i === 1 ? env : { ...env, STEVEDORE_BUILD_WORKER_ADDR: this.instanceAddress(instance) };
        const api = name === 'api-edge' && this.apiSockets ? { env: { ...own, ...this.apiSockets.childEnv() }, inheritFds: this.apiSockets.fds } : { env: own };
        const p = new ManagedProcess(
          { name: instance, command: process.execPath, args: [...nodeArgs, serviceEntry(name)], logFile: logFile(instance), healthRestartAfterMs, ...api },
          () => this.writeState(),
          this.log,
        );
        this.processes.push(p);
        p.start();
      }
    }
    this.scheduleProbes();
  }

  /**
   * A cluster's Redis: TLS with a password on the cluster's address too (the
   * unix socket stays, for this host's probes). The settings go in a file of
   * root's, not on the command line, which every user of the host can read.
   */
  private redisTlsArgs(): string[] {
    const t = this.config.redisTls;
    if (!t) return [];
    const colon = t.listen.lastIndexOf(':');
    const ca = this.config.grpcTls.ca;
    const lines = [
      `tls-port ${t.listen.slice(colon + 1)}`, `bind ${t.listen.slice(0, colon)}`,
      `tls-cert-file ${t.cert}`, `tls-key-file ${t.key}`, ...(ca ? [`tls-ca-cert-file ${ca}`] : []),
      'tls-auth-clients no', `requirepass ${t.password}`,
    ];
    const file = path.join(this.files.redisDir, 'cluster.conf');
    fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    return ['--include', file];
  }

  private scheduleProbes(): void {
    const schedule = () => {
      const all = [...(this.redis ? [this.redis] : []), ...this.processes];
      this.healthTimer = setTimeout(() => void this.probe().finally(schedule), this.ready && all.every((p) => p.state.state === 'healthy') ? STEADY_PROBE_MS : STARTUP_PROBE_MS);
    };
    void this.probe().finally(schedule);
  }

  private async probe(): Promise<void> {
    if (this.redis) this.redis.setHealth(await pingRedis(this.files.redisSocket, this.config.redisTls?.password));
    const results = await Promise.all(
      this.processes.map(async (p) => {
        if (!p.pid) return false;
        if (p.state.name === 'api-edge') return Promise.all(this.config.hosts.map(pingApi)).then((r) => r.every(Boolean));
        const address = this.instanceAddress(p.state.name);
        return probeHealth(address, channelCredentials(address, this.config.grpcTls), 1000);
      }),
    );
    results.forEach((ok, i) => this.processes[i].setHealth(ok));
    if (!this.ready && results.every(Boolean)) {
      this.ready = true;
      this.writeState();
    }
  }

  /** A service's address; a second or later build worker (`build-worker-2`, …) has a socket of its own. */
  private instanceAddress(instance: string): string {
    const extra = /^build-worker-(\d+)$/.exec(instance);
    if (extra) return `unix:${path.join(this.config.runDir, `${instance}.sock`)}`;
    return this.config.serviceAddress(instance as (typeof GRPC_SERVICES)[number]);
  }

  async stop(): Promise<void> {
    clearTimeout(this.healthTimer);
    const api = this.processes.filter((p) => p.state.name === 'api-edge');
    const rest = this.processes.filter((p) => p.state.name !== 'api-edge');
    // Stop taking requests first (the sockets, their files with them; the edge finishes), then the services, then the bus they share.
    this.apiSockets?.close();
    await Promise.all(api.map((p) => p.stop()));
    await Promise.all(rest.map((p) => p.stop()));
    await this.redis?.stop();
    fs.rmSync(this.files.state, { force: true });
    fs.rmSync(this.files.pid, { force: true });
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  // Each service in a process of its own sets its umask; with STEVEDORE_PROCESSES=one this process runs the image
  // store and the container runtime, whose content must get the modes an image expects: 022, as Docker's daemon.
  // The supervisor's own files have explicit modes either way.
  process.umask(config.processes === 'one' ? 0o022 : 0o077);
  // The held sockets are named to each API edge process alone, never to what runs in this one.
  delete process.env[API_LISTEN_FDS_ENV];
  const supervisor = new Supervisor(config);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void supervisor.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => undefined);
  try {
    await supervisor.start();
  } catch (err) {
    console.error(err);
    await supervisor.stop();
    process.exit(1);
  }
}

void main();
