#!/usr/bin/env node
// stevedore up | down | status — the engine's launcher. (The `stevedore`
// script at the repository root installs and builds first, then runs this.)
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { configToEnv, loadConfig, type StevedoreConfig } from '@stevedore/config';
import { parseApiHost, secureDataRoot } from '@stevedore/service-kit';
import { clusterLayout, clusterStacks, networkDown, networkUp, readClusterLayout, runStackCommand, type RoleStack } from './cluster';
import { launcherFiles, openLog, pidAlive, REPO_ROOT, stackProcess, type StackState } from './layout';

const DEFAULT_CLUSTER_ROOT = '/var/lib/stevedore-cluster';

const USAGE = `usage: stevedore <up|down|status|test> [options]
       stevedore cluster <up|down> [--root DIR] [--nodes N] [--edges M]

  up        start the private Redis and the five services, wait until healthy,
            print the DOCKER_HOST line to use
  down      stop everything 'up' started
  status    show each process
  test      run the whole test suite
  cluster up    a cluster on this machine: N nodes (3), each in a network
                namespace of its own, and M API edges (2); prints one
                DOCKER_HOST line per edge (default root ${DEFAULT_CLUSTER_ROOT})
  cluster down  stop it and remove its namespaces and bridge

options (each also an environment variable):
  --root DIR          STEVEDORE_ROOT       data root (default /var/lib/stevedore)
  --host URL          STEVEDORE_HOST       unix:///path or tcp://host:port (TLS only); repeatable
  --redis-url URL     REDIS_URL            use this Redis instead of a private one
  --runtime NAME      STEVEDORE_RUNTIME    runc or crun (default: whichever works)
  --log-level LEVEL   STEVEDORE_LOG_LEVEL  trace, debug, info, warn, error
  --timeout SECONDS   how long 'up' waits for the stack to be healthy (default 90)
`;

const FLAG_ENV: Record<string, string> = {
  '--root': 'STEVEDORE_ROOT',
  '--host': 'STEVEDORE_HOST',
  '--redis-url': 'REDIS_URL',
  '--runtime': 'STEVEDORE_RUNTIME',
  '--log-level': 'STEVEDORE_LOG_LEVEL',
};

interface Args {
  command: string;
  /** `cluster`'s own command (up or down). */
  sub: string;
  env: NodeJS.ProcessEnv;
  timeoutS: number;
  nodes: number;
  edges: number;
}

function count(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 32) fail(`${flag} takes a number from 1 to 32, not ${value}`);
  return n;
}

function parseArgs(argv: string[]): Args {
  const env = { ...process.env };
  const hosts: string[] = [];
  let command = '';
  let sub = '';
  let timeoutS = 90;
  let nodes = 3;
  let edges = 2;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (flag in FLAG_ENV || flag === '--timeout' || flag === '--nodes' || flag === '--edges') {
      const value = inline ?? argv[++i];
      if (value === undefined) fail(`${flag} needs a value`);
      if (flag === '--host') hosts.push(value);
      else if (flag === '--timeout') timeoutS = Number(value);
      else if (flag === '--nodes') nodes = count(flag, value);
      else if (flag === '--edges') edges = count(flag, value);
      else env[FLAG_ENV[flag]] = value;
    } else if (flag === '-h' || flag === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (!command && !flag.startsWith('-')) command = flag;
    else if (command === 'cluster' && !sub && !flag.startsWith('-')) sub = flag;
    else fail(`unknown argument ${arg}\n\n${USAGE}`);
  }
  if (hosts.length) env.STEVEDORE_HOST = hosts.join(',');
  return { command, sub, env, timeoutS, nodes, edges };
}

function fail(message: string): never {
  process.stderr.write(`stevedore: ${message}\n`);
  process.exit(2);
}

function readState(config: StevedoreConfig): StackState | undefined {
  try {
    return JSON.parse(fs.readFileSync(launcherFiles(config).state, 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

function supervisorPid(config: StevedoreConfig): number | undefined {
  try {
    const pid = Number(fs.readFileSync(launcherFiles(config).pid, 'utf8').trim());
    return stackProcess(pid, config.root) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The processes of this root's stack still alive (a supervisor killed outright leaves its children running). */
function liveProcesses(config: StevedoreConfig): Array<{ name: string; pid: number }> {
  return (readState(config)?.processes ?? []).filter((p) => stackProcess(p.pid, config.root)).map((p) => ({ name: p.name, pid: p.pid! }));
}

/**
 * One `up` at a time on a root: a lock file made exclusively, holding this
 * launcher's PID. A lock whose launcher is gone is taken over.
 */
function takeUpLock(config: StevedoreConfig): () => void {
  const file = launcherFiles(config).upLock;
  for (let tries = 0; ; tries++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw err;
    }
    const holder = Number(fs.readFileSync(file, 'utf8').trim());
    if (pidAlive(holder) && holder !== process.pid) {
      process.stderr.write(`stevedore: another \`stevedore up\` (PID ${holder}) is starting the stack on ${config.root}\n`);
      process.exit(2);
    }
    fs.rmSync(file, { force: true });
  }
}

/**
 * SIGTERM to every process, then SIGKILL to those still alive after
 * `graceMs`; resolves when the last has gone (a killed one is waited for
 * too, up to 5 s: what comes next may need what it holds).
 */
async function terminate(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  const gone = async (withinMs: number) => {
    for (const deadline = Date.now() + withinMs; pids.some(pidAlive) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
  };
  await gone(graceMs);
  for (const pid of pids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  await gone(5000);
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function up(config: StevedoreConfig, env: NodeJS.ProcessEnv, timeoutS: number): Promise<void> {
  const files = launcherFiles(config);
  // What the launcher and the supervisor write is theirs alone (each service sets its own umask).
  process.umask(0o077);
  // The root private, and tightened if an older version made it (or anything below) wider.
  secureDataRoot(config, ['run', 'logs']);
  const unlock = takeUpLock(config);
  process.on('exit', unlock);
  // One stack per data root: a second would share its databases, sockets and containers.
  const running = supervisorPid(config);
  if (running) {
    const pids = [`supervisor ${running}`, ...liveProcesses(config).map((p) => `${p.name} ${p.pid}`)];
    process.stderr.write(`stevedore: a stack is already running on ${config.root} (PIDs: ${pids.join(', ')}); \`stevedore down\` stops it\n`);
    process.exit(2);
  }
  const orphans = liveProcesses(config);
  if (orphans.length) {
    process.stderr.write(`stevedore: the previous supervisor is gone; stopping what it left running (${orphans.map((p) => `${p.name} ${p.pid}`).join(', ')})\n`);
    await terminate(orphans.map((o) => o.pid), 10_000);
  }
  fs.rmSync(files.state, { force: true });
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    ...configToEnv(config),
    // A cluster's Redis is this stack's own and is reached by URL too (over TLS, from the other hosts).
    STEVEDORE_PRIVATE_REDIS: env.STEVEDORE_PRIVATE_REDIS ?? (env.REDIS_URL ? '0' : '1'),
    STEVEDORE_GIT_COMMIT: gitCommit(),
  };
  const log = openLog(files.supervisorLog);
  const child = spawn(process.execPath, [path.join(__dirname, 'supervisor.js')], { detached: true, stdio: ['ignore', log, log], env: childEnv });
  child.unref();
  fs.closeSync(log);

  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const state = readState(config);
    if (state?.ready) {
      const pids = new Set([state.supervisorPid, ...state.processes.map((p) => p.pid)]).size;
      process.stderr.write(`Stevedore is up: data root ${config.root}, ${pids} processes. Point the docker CLI at it with:\n`);
      process.stdout.write(`DOCKER_HOST=${state.dockerHost}\n`);
      return;
    }
    // A process that keeps dying before it was ever healthy will not recover by waiting.
    const failing = state?.processes.find((p) => p.restarts >= 3 && p.state !== 'healthy');
    if (failing) {
      process.stderr.write(`stevedore: ${failing.name} keeps exiting during start-up (${failing.lastExit}):\n${tail(path.join(config.logDir, `${failing.name}.log`))}\n`);
      await down(config);
      process.exit(1);
    }
    if (!pidAlive(child.pid)) {
      process.stderr.write(`stevedore: the supervisor exited during start-up:\n${tail(files.supervisorLog)}\n`);
      process.exit(1);
    }
    if (Date.now() > deadline) {
      const waiting = state?.processes.filter((p) => p.state !== 'healthy').map((p) => p.name) ?? [];
      process.stderr.write(`stevedore: not healthy after ${timeoutS}s (waiting for: ${waiting.join(', ') || 'the supervisor'})\n`);
      for (const name of waiting) process.stderr.write(`--- logs/${name}.log\n${tail(path.join(config.logDir, `${name}.log`))}\n`);
      await down(config);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The API's unix socket files that nothing holds any more: a supervisor closes
 * (and so removes) its sockets as it stops, one killed outright leaves them.
 * A file is removed only when a connection to it is refused, so that a socket
 * some other process serves at that path is left alone.
 */
async function removeStaleApiSockets(config: StevedoreConfig): Promise<void> {
  for (const host of config.hosts) {
    const target = parseApiHost(host);
    if (target.kind !== 'unix' || !fs.lstatSync(target.path, { throwIfNoEntry: false })?.isSocket()) continue;
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(target.path);
      s.on('connect', () => (s.destroy(), resolve(false)));
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (refused) fs.rmSync(target.path, { force: true });
  }
}

async function down(config: StevedoreConfig): Promise<void> {
  const pid = supervisorPid(config);
  const state = readState(config);
  // The supervisor stops its services (and they their containers) before it exits.
  if (pid) await terminate([pid], 40_000);
  // Children of a supervisor that was killed outright (only ours: their PIDs may have been given to others since).
  const killed = (state?.processes ?? []).filter((p) => stackProcess(p.pid, config.root)).map((p) => p.pid!);
  for (const p of killed) process.kill(p, 'SIGKILL');
  // Their sockets close as they go: only then may a refused connection say the API socket is stale.
  for (const deadline = Date.now() + 5000; killed.some(pidAlive) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
  if (pid || state) await removeStaleApiSockets(config);
  const files = launcherFiles(config);
  fs.rmSync(files.state, { force: true });
  fs.rmSync(files.pid, { force: true });
  process.stderr.write(pid || state ? `Stevedore stopped (data root ${config.root})\n` : `Stevedore was not running (data root ${config.root})\n`);
}

function status(config: StevedoreConfig): void {
  const pid = supervisorPid(config);
  const state = readState(config);
  if (!pid || !state) {
    process.stdout.write(`Stevedore is not running (data root ${config.root})\n`);
    process.exit(3);
  }
  const now = Date.now();
  const rows = [['NAME', 'PID', 'STATE', 'RESTARTS', 'UPTIME', 'LAST EXIT']];
  rows.push(['supervisor', String(pid), 'running', '0', '', '']);
  for (const p of state.processes) {
    const up = p.startedAt && p.pid ? `${Math.round((now - Date.parse(p.startedAt)) / 1000)}s` : '';
    rows.push([p.name, p.pid ? String(p.pid) : '-', p.state, String(p.restarts), up, p.lastExit ?? '']);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
  process.stdout.write(`\nDOCKER_HOST=${state.dockerHost}\n`);
}

/** Every stack of a cluster on this machine: the cluster's services, then the nodes, then the edges; one DOCKER_HOST line per edge. */
async function clusterUp(root: string, a: Args): Promise<void> {
  const layout = clusterLayout(root, a.nodes, a.edges);
  networkUp(layout);
  const stacks = clusterStacks(layout);
  const start = async (stack: RoleStack) => {
    // Up again after a stack of it died (a node killed): only what is not running starts.
    const running = await runStackCommand(__filename, 'status', stack, a.timeoutS);
    if (running.code === 0) return /^DOCKER_HOST=.*$/m.exec(running.stdout)?.[0] ?? '';
    const r = await runStackCommand(__filename, 'up', stack, a.timeoutS);
    if (r.code !== 0) throw new Error(`${stack.name} did not start:\n${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  try {
    await start(stacks[0]);
    await Promise.all(stacks.filter((s) => s.netns).map(start));
    const hosts = await Promise.all(stacks.filter((s) => s.name.startsWith('edge-')).map(start));
    process.stderr.write(`A Stevedore cluster is up: ${layout.nodes.length} nodes on ${layout.subnet} (data root ${root}). Each edge serves it all:\n`);
    process.stdout.write(`${hosts.join('\n')}\n`);
  } catch (err) {
    process.stderr.write(`stevedore: ${(err as Error).message}\n`);
    await clusterDown(root, a.timeoutS);
    process.exit(1);
  }
}

async function clusterDown(root: string, timeoutS: number): Promise<void> {
  const layout = readClusterLayout(root);
  if (!layout) {
    process.stderr.write(`No Stevedore cluster on ${root}\n`);
    return;
  }
  const stacks = clusterStacks(layout);
  const edges = stacks.filter((s) => s.name.startsWith('edge-'));
  const nodes = stacks.filter((s) => s.netns);
  for (const group of [edges, nodes, [stacks[0]]]) await Promise.all(group.map((s) => runStackCommand(__filename, 'down', s, timeoutS)));
  networkDown(layout);
  process.stderr.write(`Stevedore cluster stopped (data root ${root})\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { command, env, timeoutS } = args;
  if (command === 'cluster') {
    const root = path.resolve(env.STEVEDORE_ROOT || DEFAULT_CLUSTER_ROOT);
    if (args.sub === 'up') return clusterUp(root, args);
    if (args.sub === 'down') return clusterDown(root, timeoutS);
    fail(`cluster takes up or down\n\n${USAGE}`);
  }
  let config: StevedoreConfig;
  try {
    config = loadConfig(env);
  } catch (err) {
    fail((err as Error).message);
  }
  switch (command) {
    case 'up':
      return up(config, env, timeoutS);
    case 'down':
      return down(config);
    case 'status':
      return status(config);
    default:
      process.stderr.write(USAGE);
      process.exit(2);
  }
}

void main();
