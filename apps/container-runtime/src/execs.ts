// Processes run in a running container (docker exec). An exec is a record
// until it starts; its start gives it a monitor of its own (native/shim.c in
// its exec mode), which runs the process with the OCI runtime's `exec` in the
// container's namespaces and cgroup, under the container's seccomp profile,
// capabilities and user unless the exec asks otherwise, and holds its stdio
// as a container's monitor does. The records, the monitors' sockets and the
// exit files live in the run directory, so an exec outlives a restart of the
// runtime like a container does; the exec's process ends with its container
// (the kernel ends every process of a PID namespace whose first one ends).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { containers } from '@stevedore/contracts';
import { conflict, invalid, notFound, refused, StevedoreError } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import { privateDir } from '@stevedore/service-kit';
import type { Attachment, Attachments } from './attachments';
import type { ContainerPaths } from './container-paths';
import { containerEvent, type EventOutbox } from './event-outbox';
import type { OciRuntimeRunner } from './oci-runtime';
import { resolveUser } from './oci-spec';
import { Frame, ShimConnection } from '@stevedore/contracts';
import { spawnShim } from './shim';
import type { ContainerDb, ContainerRow } from './store/container-db';

/** The longest command line an exec's events carry. */
const MAX_EVENT_COMMAND = 1024;
/** Ended execs kept per container for inspection (the oldest go first, as later ones are made). */
const KEEP_ENDED = 256;
/** Records past KEEP_ENDED before they are pruned: a create reads every record only once in this many. */
const PRUNE_SLACK = 64;

export interface ExecParts {
  db: ContainerDb;
  paths: ContainerPaths;
  runner: OciRuntimeRunner;
  outbox: EventOutbox;
  attachments: Attachments;
  /** Every capability the host has: a privileged exec gets them all. */
  hostCaps: string[];
  log: Logger;
}

/** What is kept of an exec (exec.json in its directory). */
interface ExecRecord {
  id: string;
  containerId: string;
  config: containers.ExecConfig;
  /** The container's run it belongs to (its StartedAt): an exec never started is gone with that run. */
  startedAt: string;
}

interface OciProcess {
  terminal?: boolean;
  consoleSize?: unknown;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: Record<string, string[]>;
  [key: string]: unknown;
}

/** The command line of an exec's events, as Docker writes it: `exec_create: ls /` (`ls ` without arguments). */
function commandLine(config: containers.ExecConfig): string {
  const line = `${config.cmd[0]} ${config.cmd.slice(1).join(' ')}`;
  // Events are kept by count: a command line of megabytes would cost that much in every copy of the log.
  return line.length > MAX_EVENT_COMMAND ? `${line.slice(0, MAX_EVENT_COMMAND)}…` : line;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function alive(pidFile: string): boolean {
  const pid = Number(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : 0);
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class Execs {
  /** Connections to the monitors of started execs: each closes when its process has ended. */
  private readonly watched = new Map<string, ShimConnection>();

  constructor(private readonly p: ExecParts) {}

  /** POST /containers/(id)/exec: the exec is recorded; nothing runs yet. */
  create(req: containers.ExecCreateRequest): string {
    const row = this.p.db.resolve(req.container);
    this.mustRun(row);
    const config = req.config;
    if (!config?.cmd.length) throw invalid('No exec command specified');
    const id = row.id.slice(0, 16) + randomBytes(24).toString('hex');
    this.prune(row);
    const dir = this.p.paths.execDir(id);
    privateDir(dir);
    const record: ExecRecord = { id, containerId: row.id, config, startedAt: row.started_at };
    fs.writeFileSync(path.join(dir, 'exec.json'), JSON.stringify(record), { mode: 0o600 });
    this.p.outbox.publish(containerEvent(`exec_create: ${commandLine(config)}`, row, { execID: id }));
    return id;
  }

  inspect(id: string): containers.Exec {
    const record = this.record(id);
    const dir = this.p.paths.execDir(id);
    const exit = readJson<{ exitCode: number; pid: number }>(path.join(dir, 'exit.json'));
    const started = fs.existsSync(path.join(dir, 'started'));
    const pid = Number(readJson<number>(path.join(dir, 'exec.pid')) ?? exit?.pid ?? 0);
    const running = started && !exit && alive(path.join(dir, 'shim.pid'));
    return { id, containerId: record.containerId, config: record.config, running, exitCode: exit?.exitCode, pid: running ? pid : 0, started };
  }

  /** A detached start (exec -d): the process runs with nobody attached. */
  async start(id: string): Promise<void> {
    const monitor = await this.launch(id);
    await monitor.start().catch((err) => {
      // Docker answers a detached start whose process cannot run with a 400.
      throw invalid(this.notStarted(err).message);
    });
  }

  /**
   * An attached start: the attachment is connected to the exec's monitor
   * before the process runs (it misses nothing), its stdin sent once it
   * does. A process that could not start ends the attachment with the
   * reason, written to the stream as Docker writes it.
   */
  async startAttached(id: string, a: Attachment): Promise<void> {
    // The attachment ends once the start has been answered, so its failure is told first.
    let settled = false;
    let endWaiting = false;
    const onEnd = a.onEnd;
    a.onEnd = () => {
      if (settled) onEnd();
      else endWaiting = true;
    };
    try {
      const monitor = await this.launch(id);
      await this.p.attachments.connectSocket(path.join(this.p.paths.execDir(id), 'attach.sock'), a, () => monitor.start().catch((err) => {
        throw this.notStarted(err);
      }));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      a.onOutput(a.wantStdout || !a.wantStderr ? 1 : 2, Buffer.from(`${message}\r\n`));
      if (!a.connection) endWaiting = true;
    } finally {
      settled = true;
      if (endWaiting) onEnd();
    }
  }

  /** Reattaches to an exec after the runtime came back (its monitor kept running); false when it has ended. */
  async reattach(id: string, a: Attachment): Promise<boolean> {
    this.record(id);
    const socket = path.join(this.p.paths.execDir(id), 'attach.sock');
    if (!this.inspect(id).running || !fs.existsSync(socket)) return false;
    await this.p.attachments.connectSocket(socket, a);
    return true;
  }

  /**
   * A size asked for before the exec's monitor listens (today's CLI sends it
   * as soon as the start is answered) is kept, and given to the monitor by
   * its launch: whichever of the two comes second sends it.
   */
  async resize(req: containers.ExecResizeRequest): Promise<void> {
    const record = this.record(req.id);
    this.mustRun(this.p.db.resolve(record.containerId));
    const dir = this.p.paths.execDir(req.id);
    if (fs.existsSync(path.join(dir, 'exit.json'))) throw conflict(`Exec ${req.id} is not running`);
    fs.writeFileSync(path.join(dir, 'size'), `${req.height} ${req.width}`, { mode: 0o600 });
    const socket = path.join(dir, 'attach.sock');
    if (fs.existsSync(socket)) await this.p.attachments.resizeSocket(socket, req.height, req.width);
  }

  /** Start-up: execs still running are followed again; those that ended while the runtime was away get their exec_die. */
  adopt(): void {
    for (const row of this.p.db.all()) {
      const dir = this.p.paths.execsDir(row.id);
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const record = readJson<ExecRecord>(path.join(dir, name, 'exec.json'));
        if (!record || !fs.existsSync(path.join(dir, name, 'started'))) continue;
        const socket = path.join(dir, name, 'attach.sock');
        ShimConnection.connect(socket).then(
          (monitor) => this.follow(record.id, monitor),
          () => this.ended(record.id),
        );
      }
    }
  }

  /** Shutdown: the monitors stay, and the next start follows them again. */
  close(): void {
    for (const monitor of this.watched.values()) monitor.close();
    this.watched.clear();
  }

  /**
   * Before a new exec, once the container has more than KEEP_ENDED + PRUNE_SLACK
   * records (looked at in bulk, not at every exec): the records of its
   * earlier runs that never started go, and ended ones past KEEP_ENDED,
   * oldest first.
   */
  private prune(row: ContainerRow): void {
    const dir = this.p.paths.execsDir(row.id);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    if (names.length <= KEEP_ENDED + PRUNE_SLACK) return;
    const ended: Array<{ name: string; at: number }> = [];
    for (const name of names) {
      const at = (file: string) => fs.statSync(path.join(dir, name, file), { throwIfNoEntry: false });
      const exit = at('exit.json');
      const record = readJson<ExecRecord>(path.join(dir, name, 'exec.json'));
      if (exit) ended.push({ name, at: exit.mtimeMs });
      else if (!at('started') && record?.startedAt !== row.started_at) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    }
    ended.sort((a, b) => a.at - b.at);
    for (const e of ended.slice(0, Math.max(0, ended.length - KEEP_ENDED))) fs.rmSync(path.join(dir, e.name), { recursive: true, force: true });
  }

  private record(id: string): ExecRecord {
    const record = /^[0-9a-f]{64}$/.test(id) ? readJson<ExecRecord>(path.join(this.p.paths.execDir(id), 'exec.json')) : undefined;
    if (!record || record.id !== id) throw notFound(`No such exec instance: ${id}`);
    return record;
  }

  private mustRun(row: ContainerRow): void {
    if (row.status !== 'running') throw conflict(`Container ${row.id} is not running`);
    if (row.paused) throw conflict(`Container ${row.id} is paused, unpause the container before exec`);
  }

  /** Gives a recorded exec its monitor, ready to start the process; the exec can be started only once. */
  private async launch(id: string): Promise<ShimConnection> {
    const { db, paths, runner } = this.p;
    const record = this.record(id);
    const row = db.resolve(record.containerId);
    this.mustRun(row);
    if (row.started_at !== record.startedAt) throw notFound(`No such exec instance: ${id}`);
    const dir = paths.execDir(id);
    try {
      fs.writeFileSync(path.join(dir, 'started'), '', { flag: 'wx', mode: 0o600 });
    } catch {
      throw conflict(`Exec command ${id} has already run`);
    }
    const c = record.config;
    let monitor: ShimConnection;
    try {
      const processFile = path.join(dir, 'process.json');
      fs.writeFileSync(processFile, JSON.stringify(this.processOf(row, c)), { mode: 0o600 });
      await spawnShim({ id: row.id, state: dir, runtime: runner.runtime.name, runtimeRoot: runner.root, tty: c.tty, stdin: c.attachStdin, stdinOnce: true, exec: processFile });
      monitor = await ShimConnection.connect(path.join(dir, 'attach.sock'));
    } catch (err) {
      // The process never ran: recorded as one that could not (Docker's 126), with its exec_die.
      fs.writeFileSync(path.join(dir, 'exit.json'), JSON.stringify({ exitCode: 126, finishedAt: new Date().toISOString(), pid: 0 }), { mode: 0o600 });
      this.ended(id);
      throw err;
    }
    this.follow(id, monitor);
    const size = fs.existsSync(path.join(dir, 'size')) ? fs.readFileSync(path.join(dir, 'size'), 'utf8') : '';
    if (size) monitor.send(Frame.resize, size);
    this.p.outbox.publish(containerEvent(`exec_start: ${commandLine(c)}`, row, { execID: id }));
    return monitor;
  }

  /** The process of an exec: the container's, with the exec's command, terminal, user, directory and environment. */
  private processOf(row: ContainerRow, c: containers.ExecConfig): OciProcess {
    const spec = readJson<{ process: OciProcess; root: { path: string } }>(path.join(this.p.paths.dir(row.id), 'config.json'));
    if (!spec) throw refused(`Container ${row.id} has no runtime configuration`);
    const base = spec.process;
    const env = new Map(base.env.map((e) => [e.split('=')[0], e]));
    const user = c.user ? resolveUser(spec.root.path, c.user) : undefined;
    // Another user's HOME is its own (from the container's passwd), unless the exec sets one.
    if (user) env.set('HOME', `HOME=${user.home}`);
    for (const e of c.env) env.set(e.split('=')[0], e);
    const out: OciProcess = { ...base, args: c.cmd, terminal: c.tty, env: [...env.values()], cwd: c.workingDir || base.cwd };
    delete out.consoleSize;
    if (user) out.user = { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids };
    if (c.privileged) out.capabilities = { bounding: this.p.hostCaps, effective: this.p.hostCaps, permitted: this.p.hostCaps, ambient: [] };
    if (!path.posix.isAbsolute(out.cwd)) throw invalid(`the working directory '${out.cwd}' is invalid, it needs to be an absolute path`);
    return out;
  }

  /** A start the runtime refused: Docker's words for it, the process's exit code already recorded by the monitor. */
  private notStarted(err: unknown): StevedoreError {
    const message = err instanceof Error ? err.message : String(err);
    return refused(`OCI runtime exec failed: ${message}`);
  }

  private follow(id: string, monitor: ShimConnection): void {
    this.watched.set(id, monitor);
    monitor.on('close', () => {
      if (this.watched.get(id) === monitor) this.watched.delete(id);
      this.ended(id);
    });
  }

  /** An ended exec's exec_die, told once (a marker beside its exit file). */
  private ended(id: string): void {
    try {
      const dir = this.p.paths.execDir(id);
      // A monitor that died without recording the exit: the process went with it (as if SIGKILLed, Docker's 137).
      if (!fs.existsSync(path.join(dir, 'exit.json')) && fs.existsSync(path.join(dir, 'started')) && !alive(path.join(dir, 'shim.pid'))) {
        fs.writeFileSync(path.join(dir, 'exit.json'), JSON.stringify({ exitCode: 137, finishedAt: new Date().toISOString(), pid: 0 }), { mode: 0o600 });
      }
      const exit = readJson<{ exitCode: number }>(path.join(dir, 'exit.json'));
      if (!exit) return;
      fs.writeFileSync(path.join(dir, 'die-told'), '', { flag: 'wx' });
      const record = this.record(id);
      const row = this.p.db.resolve(record.containerId);
      this.p.outbox.publish(containerEvent('exec_die', row, { execID: id, exitCode: String(exit.exitCode) }));
    } catch (err) {
      // Told before, or the container is gone: nothing to tell.
      if (!(err instanceof StevedoreError) && (err as NodeJS.ErrnoException).code !== 'EEXIST') this.p.log.warn({ err, id }, 'recording an exec\'s end failed');
    }
  }
}
