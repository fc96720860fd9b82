// Starting real stacks for the tests, the way a user does (`./stevedore up`
// with a data root and a socket of their own), and talking to them with raw
// HTTP and the real docker CLI.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '@stevedore/config';
import { startTokenServer, type TokenServer } from './token-server';
import { busyboxRootfsTar } from './images-fixtures';
import { pidRunning, processesMentioning } from './host-probes';

// Tests take the host probes from here too, beside the stacks they look at.
export { mountsBelow, pidCommand, processesMentioning, rssKiB, vethsOn } from './host-probes';

const execFileP = promisify(execFile);

export const REPO = process.env.STEVEDORE_REPO ?? path.resolve(__dirname, '..', '..', '..');
const STEVEDORE = path.join(REPO, 'stevedore');

export interface ProcessInfo {
  name: string;
  pid: number | null;
  state: string;
  restarts: number;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export class Stack {
  readonly socket: string;
  readonly dockerHost: string;
  readonly dockerConfig: string;

  constructor(
    readonly root: string,
    readonly env: NodeJS.ProcessEnv,
    dockerHost = `unix://${path.join(root, 'api.sock')}`,
  ) {
    this.dockerHost = dockerHost;
    this.socket = dockerHost.slice('unix://'.length);
    this.dockerConfig = path.join(root, 'docker-cli');
    fs.mkdirSync(this.dockerConfig, { recursive: true });
  }

  state(): { supervisorPid: number; processes: ProcessInfo[] } {
    return JSON.parse(fs.readFileSync(path.join(this.root, 'run', 'state.json'), 'utf8'));
  }

  process(name: string): ProcessInfo {
    const p = this.state().processes.find((x) => x.name === name);
    if (!p) throw new Error(`no process ${name}`);
    return p;
  }

  /** One HTTP request on the API socket. */
  request(method: string, urlPath: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socket, method, path: urlPath, headers: options.headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(options.body);
    });
  }

  /** Bytes written straight to the socket; resolves with everything the server sent back. */
  raw(bytes: string | Buffer, timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = net.connect(this.socket);
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => s.destroy(), timeoutMs);
      s.on('connect', () => s.write(bytes));
      s.on('data', (c) => chunks.push(c));
      s.on('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      s.on('error', reject);
    });
  }

  /** Runs the real docker CLI against this stack. */
  async docker(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCommand('docker', args, {
      env: { ...process.env, DOCKER_HOST: this.dockerHost, DOCKER_CONFIG: this.dockerConfig, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' },
      input: options.input,
      timeoutMs: options.timeoutMs ?? 60_000,
    });
  }

  async stevedore(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCommand(STEVEDORE, args, { env: this.env, timeoutMs: 120_000 });
  }

  async down(): Promise<void> {
    await this.stevedore(['down']);
  }

  /** Waits until GET path answers `status`, up to `timeoutMs`; resolves with the time it took. */
  async waitFor(urlPath: string, status = 200, timeoutMs = 15_000): Promise<number> {
    const start = Date.now();
    for (;;) {
      try {
        if ((await this.request('GET', urlPath)).status === status) return Date.now() - start;
      } catch {
        // not answering yet
      }
      if (Date.now() - start > timeoutMs) throw new Error(`${urlPath} did not answer ${status} within ${timeoutMs} ms`);
      await sleep(50);
    }
  }
}

/** The frames of a multiplexed attach or log stream: [stream, text]. */
export function demux(buf: Buffer): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let i = 0; i + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(i + 4);
    out.push([buf[i], buf.subarray(i + 8, i + 8 + len).toString()]);
    i += 8 + len;
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    // A command that exits before it reads its input (it failed at once) closes the pipe: not the test's error.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
  });
}

/** A temporary directory with a short path (unix socket paths are limited to 107 bytes). */
export function shortTempDir(prefix: string): string {
  return removedAtExit(fs.mkdtempSync(path.join('/tmp', prefix)));
}

const scratch: string[] = [];

/**
 * A temporary file or directory removed when the test process ends (the
 * suite's footprint check counts /tmp's entries); kept with
 * STEVEDORE_TEST_KEEP=1, for debugging.
 */
export function removedAtExit(file: string): string {
  if (scratch.length === 0 && process.env.STEVEDORE_TEST_KEEP !== '1') {
    process.on('exit', () => {
      for (const f of scratch) {
        try {
          fs.rmSync(f, { recursive: true, force: true });
        } catch {
          // busy (a stack that was never stopped): its test failed already
        }
      }
    });
  }
  scratch.push(file);
  return file;
}

let stacksStarted = 0;

/**
 * Starts a stack with `./stevedore up` on a fresh data root and socket, and
 * a bridge of its own (name and /24 subnet), so that stacks side by side
 * never share addresses.
 */
export async function startStack(extraEnv: Record<string, string> = {}, dockerHost?: string): Promise<Stack> {
  const root = shortTempDir('sd-');
  const n = stacksStarted++;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STEVEDORE_ROOT: root,
    STEVEDORE_HOST: `unix://${path.join(root, 'api.sock')}`,
    STEVEDORE_BRIDGE: `sdt${process.pid % 100000}-${n}`,
    STEVEDORE_BRIDGE_SUBNET: `10.213.${(process.pid * 7 + n) % 250}.0/24`,
  };
  delete env.REDIS_URL; // a private Redis per stack
  Object.assign(env, extraEnv);
  const stack = new Stack(root, env, dockerHost);
  const up = await stack.stevedore(['up']);
  if (up.code !== 0) throw new Error(`stevedore up failed (${up.code}):\n${up.stderr}`);
  if (up.stdout.trim() !== `DOCKER_HOST=${stack.dockerHost}`) throw new Error(`stevedore up printed ${JSON.stringify(up.stdout)}`);
  return stack;
}

/** A stack with busybox imported as `busybox:latest`, what most container tests start from. */
export async function startStackWithBusybox(extraEnv: Record<string, string> = {}): Promise<Stack> {
  const stack = await startStack(extraEnv);
  const imported = await stack.docker(['import', busyboxRootfsTar(), 'busybox:latest']);
  if (imported.code !== 0) throw new Error(`importing busybox failed (${imported.code}): ${imported.stderr}`);
  return stack;
}

/** The outgoing NAT rule a stack's runtime makes for its bridge, as iptables arguments after the command. */
export function bridgeNatRule(env: NodeJS.ProcessEnv): string[] {
  const { name, subnet } = loadConfig(env).bridge;
  return ['POSTROUTING', '-s', subnet, '!', '-o', name, '-m', 'comment', '--comment', `stevedore-${name} outgoing NAT`, '-j', 'MASQUERADE'];
}

/**
 * Stops a stack. Unless the test killed processes on purpose, any restart
 * means something crashed (the supervisor would otherwise hide it): fail.
 */
export async function stopStack(stack: Stack | undefined, options: { allowRestarts?: boolean } = {}): Promise<void> {
  if (!stack) return;
  let crashed: string[] = [];
  try {
    crashed = stack.state().processes.filter((p) => p.restarts > 0).map((p) => `${p.name} (${p.restarts}x)`);
  } catch {
    // no state: the stack is not running
  }
  // For debugging a failure: STEVEDORE_TEST_KEEP=1 leaves the stack and its logs.
  if (process.env.STEVEDORE_TEST_KEEP === '1') return void process.stderr.write(`kept stack at ${stack.root}\n`);
  await stack.down();
  // The bridge stays after `down` (as Docker's does); a test stack's goes with it.
  const bridge = String(stack.env.STEVEDORE_BRIDGE);
  spawnSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
  // So does its outgoing NAT rule (kept after `down` like the bridge, as Docker's daemon kept its own).
  spawnSync('iptables', ['-w', '-t', 'nat', '-D', ...bridgeNatRule(stack.env)], { stdio: 'ignore' });
  // So does the chain of STEVEDORE_ICC=false, when the stack had one.
  spawnSync('iptables', ['-w', '-D', 'FORWARD', '-i', bridge, '-o', bridge, '-j', `SD-ICC-${bridge}`], { stdio: 'ignore' });
  spawnSync('iptables', ['-w', '-F', `SD-ICC-${bridge}`], { stdio: 'ignore' });
  spawnSync('iptables', ['-w', '-X', `SD-ICC-${bridge}`], { stdio: 'ignore' });
  // Nothing of the stack may outlive `down`: no monitor, no service, no Redis.
  const leftovers = processesMentioning(stack.root);
  for (const p of leftovers) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (leftovers.length) throw new Error(`processes left running after stevedore down:\n${leftovers.map((p) => `${p.pid} ${p.cmd}`).join('\n')}`);
  if (crashed.length && !options.allowRestarts) {
    const logs = crashed.map((c) => c.split(' ')[0]).map((n) => `--- ${n}.log\n${fs.readFileSync(path.join(stack.root, 'logs', `${n}.log`), 'utf8').split('\n').filter((l) => !l.startsWith('{"level":30')).slice(-30).join('\n')}`);
    throw new Error(`processes restarted during the test: ${crashed.join(', ')}\n${logs.join('\n')}`);
  }
  fs.rmSync(stack.root, { recursive: true, force: true });
}


/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Debian's docker-registry on 127.0.0.1, optionally behind htpasswd basic auth. */
/** Debian's docker-registry on 127.0.0.1: open, with htpasswd, or with bearer tokens from a token server. */
export async function startRegistry(
  auth?: { username: string; password: string; tokens?: boolean },
): Promise<{ address: string; stop(): Promise<void>; accessLog(): string; tokens?: TokenServer }> {
  const dir = shortTempDir('reg-');
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dir}/data`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ];
  let tokens: TokenServer | undefined;
  if (auth?.tokens) {
    tokens = await startTokenServer(dir, auth);
    lines.push('auth:', '  token:', `    realm: ${tokens.realm}`, `    service: ${tokens.service}`, `    issuer: ${tokens.issuer}`, `    rootcertbundle: ${tokens.rootCertFile}`);
  } else if (auth) {
    const { stdout } = await execFileP('htpasswd', ['-Bbn', auth.username, auth.password]);
    fs.writeFileSync(path.join(dir, 'htpasswd'), stdout);
    lines.push('auth:', '  htpasswd:', '    realm: stevedore-test', `    path: ${dir}/htpasswd`);
  }
  fs.writeFileSync(path.join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  const logFile = path.join(dir, 'access.log');
  const child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', fs.openSync(logFile, 'a'), fs.openSync(logFile, 'a')] });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
        res.resume();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await tokens?.stop();
      throw new Error('docker-registry did not start');
    }
    await sleep(50);
  }
  return {
    address: `127.0.0.1:${port}`,
    tokens,
    accessLog: () => fs.readFileSync(logFile, 'utf8'),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await tokens?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}


/**
 * The Docker engine 20.10 from Debian's docker.io, on its own socket, data
 * root and exec root (never another engine's), for interoperability tests.
 */
/** The goroutine dumps a containerd leaves in /tmp. */
const stackDumps = (): string[] => fs.readdirSync('/tmp').filter((f) => /^containerd\.\d+\.stacks\.log$/.test(f));

export async function startReferenceDocker(): Promise<{ host: string; run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>; stop(): Promise<void> }> {
  const dir = shortTempDir('ref-');
  const dumpsBefore = new Set(stackDumps());
  const socket = path.join(dir, 'd.sock');
  const child = spawn('/usr/sbin/dockerd', [
    '--host', `unix://${socket}`, '--data-root', path.join(dir, 'root'), '--exec-root', path.join(dir, 'exec'),
    '--pidfile', path.join(dir, 'd.pid'), '--iptables=false', '--bridge=none', '--containerd-namespace', path.basename(dir),
    '--log-level', 'error',
  ], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'log'), 'a')] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      http.get({ socketPath: socket, path: '/_ping' }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      }).on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dockerd did not start: ${fs.readFileSync(path.join(dir, 'log'), 'utf8').slice(-2000)}`);
    }
    await sleep(100);
  }
  const config = path.join(dir, 'cli');
  fs.mkdirSync(config);
  return {
    host: `unix://${socket}`,
    run: (args) => runCommand('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: config, DOCKER_BUILDKIT: '0' }, timeoutMs: 120_000 }),
    stop: async () => {
      // Its containerd may dump its goroutines to /tmp/containerd.<pid>.stacks.log as it is stopped (it outlives dockerd a little): that goes too.
      const containerd = spawnSync('pgrep', ['-P', String(child.pid), 'containerd'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      for (const pid of containerd) for (let i = 0; i < 100 && pidRunning(pid); i++) await sleep(100);
      for (const f of stackDumps()) if (!dumpsBefore.has(f)) fs.rmSync(path.join('/tmp', f), { force: true });
      spawnSync('umount', ['-R', path.join(dir, 'root')]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An answer as the conformance and differential tests compare them: status, content type (no parameters), body. */
export interface RawAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** One request on any engine's socket (a stack's, or the reference engine's). */
export function requestOn(socket: string, method: string, urlPath: string, body?: Buffer | string, headers: Record<string, string> = {}, timeoutMs = 30_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: urlPath, agent: false, headers: { ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? '').split(';')[0], body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
