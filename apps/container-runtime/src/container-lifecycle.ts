// A container's life: created from an image, started (its root filesystem
// mounted, its network joined, its files written, its monitor spawned),
// signalled, stopped, restarted, paused, and removed with what it held.
// The exit of a running container is exit-monitor.ts's to record.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { containerConfigText, type containers } from '@stevedore/contracts';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';
import { DEFAULT_TAG, splitRepoTag } from '@stevedore/docker-api';
import { asStevedoreError, conflict, notAllowed, notFound, refused, StevedoreError } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import { removeTree, removeTreeSoon } from '@stevedore/archive';
import { privateDir } from '@stevedore/service-kit';
import type { Attachments } from './attachments';
import { clusterSummary, type ClusterPlace } from './cluster-place';
import { writeEtcFiles } from './container-files';
import type { ContainerImages } from './container-images';
import type { ContainerNetwork } from './container-network';
import type { ContainerPaths } from './container-paths';
import { createWarnings } from './create-warnings';
import { containerEvent, type EventOutbox } from './event-outbox';
import type { ExitMonitor } from './exit-monitor';
import type { ContainerFreezer } from './freezer';
import type { CgroupFacts } from './host-facts';
import { buildSpec, makeWorkingDir, resolveUser } from './oci-spec';
import type { OciRuntimeRunner } from './oci-runtime';
import { isMounted, mountRootfs, unmountRootfs } from './rootfs';
import type { SeccompProfile } from './seccomp';
import { parseSignal, SIGKILL, SIGTERM } from './signals';
import { ShimConnection } from '@stevedore/contracts';
import { spawnShim } from './shim';
import type { ContainerDb, ContainerRow } from './store/container-db';
import { checkName, newContainerId, randomName } from './store/names';
import { volumesAtStart } from './volumes';

/** Docker 1.0 refused a container on a chain of this many layers (its limit of 127 parents, less the container's own two). */
const MAX_IMAGE_DEPTH = 125;

/** How long a SIGKILLed container is waited for (stop, kill, restart), and a force-removed one. */
const KILL_WAIT_MS = 10_000;
const FORCED_REMOVE_WAIT_MS = 15_000;

export interface LifecycleParts {
  db: ContainerDb;
  paths: ContainerPaths;
  images: ContainerImages;
  runner: OciRuntimeRunner;
  outbox: EventOutbox;
  exits: ExitMonitor;
  network: ContainerNetwork;
  freezer: ContainerFreezer;
  attachments: Attachments;
  /** What the host gives containers, read once at start-up. */
  host: {
    /** What create warns about: the kernel's limits and IPv4 forwarding (Docker 1.0 read them at start-up too). */
    facts: CgroupFacts & { ipv4Forwarding: boolean };
    /** The host's bounding set: a privileged container's capabilities. */
    caps: string[];
    /** Docker's default seccomp profile. */
    seccomp: SeccompProfile;
    /** The containers' AppArmor profile, on a host that has AppArmor. */
    appArmorProfile?: string;
  };
  /** The rotation of each container's json-file log, done by its monitor. */
  logLimits: { maxSizeBytes: number; maxFiles: number };
  log: Logger;
  /** A cluster's node: names are claimed cluster-wide, and where each container is recorded. */
  cluster?: ClusterPlace;
}


/** Docker 1.0's answer to stop, kill or restart of a paused container. */
const pausedRefusal = (verb: 'stop' | 'kill' | 'restart', ref: string, id: string) =>
  refused(`Cannot ${verb} container ${ref}: Container ${id} is paused. Unpause the container before stopping`);

/** The user's config over the image's: what the user left empty comes from the image. */
function mergeImageConfig(user: ContainerConfig, image: ContainerConfig | undefined): ContainerConfig {
  if (!image) return user;
  const out: ContainerConfig = { ...user };
  const empty = (v: unknown) => v === undefined || v === null || v === '' || v === 0 || (Array.isArray(v) && v.length === 0);
  for (const key of ['User', 'WorkingDir', 'Memory', 'MemorySwap', 'CpuShares', 'Cpuset', 'Domainname'] as const) {
    if (empty(out[key]) && !empty(image[key])) (out as Record<string, unknown>)[key] = image[key];
  }
  // Env and ExposedPorts are unions (the user wins on the same key).
  const env = new Map<string, string>();
  for (const e of [...(image.Env ?? []), ...(user.Env ?? [])]) env.set(e.split('=')[0], e);
  if (env.size) out.Env = [...env.values()];
  if (image.ExposedPorts || user.ExposedPorts) out.ExposedPorts = { ...(image.ExposedPorts ?? {}), ...(user.ExposedPorts ?? {}) };
  if (image.Volumes || user.Volumes) out.Volumes = { ...(image.Volumes ?? {}), ...(user.Volumes ?? {}) };
  if (empty(user.Entrypoint)) {
    out.Entrypoint = image.Entrypoint ?? null;
    if (empty(user.Cmd)) out.Cmd = image.Cmd ?? null;
  }
  return out;
}

/** A start's failure as the client sees it. */
function startFailure(row: ContainerRow, config: ContainerConfig, err: unknown): StevedoreError {
  let message = asStevedoreError(err).message;
  // Docker's words for a missing command, whichever runtime said it: today's CLI exits 127 on them.
  if (/executable file .*not found|no such file or directory/i.test(message) && !/executable file not found in \$PATH/.test(message)) {
    const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])][0] ?? '';
    message = `exec: "${command}": executable file not found in $PATH (${message})`;
  }
  return new StevedoreError(asStevedoreError(err).kind === 'notFound' ? 'notFound' : 'refused', `Cannot start container ${row.id}: ${message}`);
}

export class ContainerLifecycle {
  constructor(private readonly p: LifecycleParts) {}

  async create(req: containers.CreateRequest, requestId: string): Promise<containers.CreateResponse> {
    const { db, paths, images } = this.p;
    let config: ContainerConfig;
    let hostConfig: HostConfig;
    try {
      config = JSON.parse(req.configJson || '{}');
      hostConfig = JSON.parse(req.hostConfigJson || '{}') ?? {};
    } catch (err) {
      throw refused(`Invalid container config: ${(err as Error).message}`);
    }
    if (!config.Image) throw refused('No image was given (Config.Image)');
    for (const [what, v] of [['Memory', config.Memory ?? hostConfig.Memory ?? 0], ['MemorySwap', config.MemorySwap ?? hostConfig.MemorySwap ?? 0]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || (v < 0 && !(what === 'MemorySwap' && v === -1)) || v > 2 ** 62) throw refused(`Invalid ${what} limit: ${v}`);
    }
    const memory = config.Memory || hostConfig.Memory || 0;
    if (memory > 0 && memory < 524288) throw refused('Minimum memory limit allowed is 512k');
    const warnings = createWarnings(config, this.p.host.facts);
    let name = req.name ? checkName(req.name) : '';
    if (name) {
      const taken = db.byName(name);
      if (taken) throw conflict(`Conflict, The name ${name.slice(1)} is already assigned to ${taken.id.slice(0, 12)}. You have to delete (or rename) that container to be able to assign ${name.slice(1)} to a container again.`);
    }
    const id = newContainerId();
    // The store's use and the container's record are one change of image use: no reconciliation comes between.
    const endChange = await images.begin();
    const image = await images.use(config.Image, id, false, requestId).catch((err) => {
      endChange();
      const e = asStevedoreError(err);
      if (e.kind === 'notFound') throw notFound(`No such image: ${config.Image} (tag: ${splitRepoTag(config.Image!).tag ?? DEFAULT_TAG})`);
      throw e;
    });
    try {
      if (image.layers.length >= MAX_IMAGE_DEPTH) throw refused('Cannot create container with more than 127 parents');
      const merged = mergeImageConfig(config, containerConfigText.decode(image.configJson));
      if ((merged.Cmd ?? []).length === 0 && (merged.Entrypoint ?? []).length === 0) throw refused('No command specified');
      for (let attempt = 0; !name; attempt++) {
        const candidate = `/${randomName(attempt)}`;
        if (!db.byName(candidate) && !(await this.claimed(candidate, id))) name = candidate;
      }
      if (req.name) {
        // Unique across the cluster: claimed before the container exists.
        const holder = await this.claimed(name, id);
        if (holder) throw conflict(`Conflict, The name ${name.slice(1)} is already assigned to ${holder.slice(0, 12)}. You have to delete (or rename) that container to be able to assign ${name.slice(1)} to a container again.`);
      }
      fs.mkdirSync(paths.dir(id), { recursive: true, mode: 0o700 });
      db.createContainer({ id, name, created: new Date().toISOString(), image_id: image.id, image_name: image.displayName, config: JSON.stringify(merged), host_config: JSON.stringify(hostConfig) });
    } catch (err) {
      await images.release(id, requestId).catch(() => undefined);
      await this.p.cluster?.index.release(id, this.p.cluster.node).catch(() => undefined);
      fs.rmSync(paths.dir(id), { recursive: true, force: true });
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw conflict(`Conflict, The name ${name.slice(1)} is already assigned. You have to delete (or rename) that container to be able to assign ${name.slice(1)} to a container again.`);
      throw err;
    } finally {
      endChange();
    }
    const row = db.get(id)!;
    await this.p.cluster?.index.describe(id, clusterSummary(row)).catch((err: Error) => this.p.log.warn({ err: err.message }, 'describing the container to the cluster failed'));
    this.publish('create', row);
    return { id, warnings };
  }

  async start(req: containers.StartRequest, requestId: string, announce = true): Promise<void> {
    const { db, images, exits, freezer } = this.p;
    const id = db.resolve(req.id).id;
    // A copy of a stopped container and its start exclude each other (freezer.ts says why).
    freezer.beginStart(id);
    try {
      // An exit being recorded finishes first: the record read after it is what the start works from.
      await exits.settled(id);
      const row = db.get(id);
      if (!row) throw notFound(`No such container: ${req.id}`);
      if (row.status === 'running') return; // Docker 1.0: a no-op, still 204
      const hostConfig = req.hostConfigJson ? this.replaceHostConfig(row.id, req.hostConfigJson) : (JSON.parse(row.host_config) as HostConfig);
      await this.run(row, JSON.parse(row.config) as ContainerConfig, hostConfig, requestId);
      if (announce) this.publish('start', row);
    } catch (err) {
      // The image store heard `running` as the start began: it hears the record's word again (an unreachable store is reconciled).
      const now = db.get(id);
      if (now && now.status !== 'running' && asStevedoreError(err).kind !== 'unavailable') {
        await images.change(() => images.use(now.image_id, id, false, requestId)).catch((e) => this.p.log.warn({ err: e, id }, 'updating the image use failed'));
      }
      throw err;
    } finally {
      freezer.endStart(id);
    }
  }

  /** A start's HostConfig (Docker 1.0 took it there): it replaces the one given at create. */
  private replaceHostConfig(id: string, json: string): HostConfig {
    let hostConfig: HostConfig;
    try {
      hostConfig = JSON.parse(json);
    } catch (err) {
      throw refused(`Invalid host config: ${(err as Error).message}`);
    }
    this.p.db.setHostConfig(id, json);
    return hostConfig;
  }

  /** Mounts the root filesystem, makes the bundle and has the monitor run it; a failure after the mount is recorded as an exit. */
  private async run(row: ContainerRow, config: ContainerConfig, hostConfig: HostConfig, requestId: string): Promise<void> {
    const { paths, images } = this.p;
    let rootfs: string;
    try {
      const image = await images.change(() => images.use(row.image_id, row.id, true, requestId));
      rootfs = (await mountRootfs(paths.dir(row.id), image.layers)).merged;
    } catch (err) {
      // Its layers could not be had or mounted: an exit too (a `run --rm` waits for its die).
      await this.undoStart(row, err);
      throw startFailure(row, config, err);
    }
    try {
      // Refused in here, as the other failures of a start: the container is recorded as exited with a `die` (today's `run --rm` waits for it).
      const spec = await this.bundle(row, config, hostConfig, rootfs);
      fs.writeFileSync(path.join(paths.dir(row.id), 'config.json'), JSON.stringify(spec), { mode: 0o600 });
      await this.launch(row, config);
    } catch (err) {
      await this.undoStart(row, err);
      throw startFailure(row, config, err);
    }
  }

  /** The OCI spec of a start: its network joined, its volumes made, its files written. */
  private async bundle(row: ContainerRow, config: ContainerConfig, hostConfig: HostConfig, rootfs: string): Promise<object> {
    const { db, paths, network, host } = this.p;
    const plan = network.plan(row, config, hostConfig);
    const user = resolveUser(rootfs, config.User ?? '');
    makeWorkingDir(rootfs, config);
    const volumes = volumesAtStart(db, paths.volumes, row.id, config, hostConfig, rootfs);
    const { netnsPath, ipAddress } = await network.join(row, config, hostConfig, plan);
    const etc = writeEtcFiles(paths.dir(row.id), row.id, config, hostConfig, ipAddress, plan.links);
    // The links' variables first: the container's own environment wins.
    const withLinks = { ...config, Env: [...plan.links.flatMap((l) => l.env), ...(config.Env ?? [])] };
    return buildSpec({ id: row.id, rootfs, config: withLinks, hostConfig, user, hostname: etc.name, etcFiles: etc, hostCaps: host.caps, volumes, netnsPath, seccomp: host.seccomp, appArmorProfile: host.appArmorProfile });
  }

  /** Has the monitor create the container, connects the attachments waiting for it, then lets its process run. */
  private async launch(row: ContainerRow, config: ContainerConfig): Promise<void> {
    const { db, paths, runner, exits, attachments, logLimits } = this.p;
    const state = paths.stateDir(row.id);
    fs.rmSync(state, { recursive: true, force: true });
    privateDir(state);
    const pid = await spawnShim({
      id: row.id, bundle: paths.dir(row.id), state, runtime: runner.runtime.name, runtimeRoot: runner.root, tty: Boolean(config.Tty),
      stdin: Boolean(config.OpenStdin), stdinOnce: Boolean(config.StdinOnce), log: paths.logFile(row.id), logMaxSize: logLimits.maxSizeBytes, logMaxFiles: logLimits.maxFiles,
    });
    const monitor = await ShimConnection.connect(paths.attachSocket(row.id));
    exits.watch(row.id, monitor);
    // Attachments made before start are connected before the process runs: they miss nothing.
    await attachments.connectPending(row.id);
    await monitor.start();
    db.markStarted(row.id, pid, new Date().toISOString());
  }

  /** Undoes what a failed start made, and records the container as exited with its `die`. */
  private async undoStart(row: ContainerRow, err: unknown): Promise<void> {
    const { paths, runner, exits, network, attachments, log } = this.p;
    await runner.forceDelete(row.id).catch(() => undefined);
    exits.unwatch(row.id);
    await unmountRootfs(paths.dir(row.id));
    await network.release(row.id).catch((e) => log.warn({ err: e, id: row.id }, 'taking a container off the bridge failed'));
    const message = asStevedoreError(err).message;
    // The process never ran: Docker reports 127 for a command it cannot find, 126 otherwise.
    const exitCode = /not found|no such file/i.test(message) ? 127 : 126;
    // `die` for a start that failed: today's CLI (run --rm) waits for it before it removes the container.
    exits.markExited(row, exitCode, new Date().toISOString());
    attachments.endPending(row.id);
  }

  async stop(req: containers.StopRequest): Promise<void> {
    const row = this.p.db.resolve(req.id);
    if (row.status !== 'running') return;
    if (row.paused) throw pausedRefusal('stop', req.id, row.id);
    await this.terminate(row, req.timeout);
    this.publish('stop', row);
  }

  async kill(req: containers.KillRequest): Promise<void> {
    const row = this.p.db.resolve(req.id);
    const sig = parseSignal(req.signal);
    if (row.status !== 'running') return;
    if (row.paused) throw pausedRefusal('kill', req.id, row.id);
    await this.signal(row, sig);
    if (sig === SIGKILL) {
      await this.p.exits.untilExited(row, KILL_WAIT_MS);
      this.publish('kill', row);
    }
  }

  /** Stop then start; Docker 1.0 emitted `die` and `restart`, not stop/start. */
  async restart(req: containers.StopRequest, requestId: string): Promise<void> {
    const row = this.p.db.resolve(req.id);
    if (row.paused) throw pausedRefusal('restart', req.id, row.id);
    if (row.status === 'running') await this.terminate(row, req.timeout);
    await this.start({ id: row.id, hostConfigJson: '' }, requestId, false);
    this.publish('restart', row);
  }

  /** Freezes (or thaws) every process of the container (the freezer cgroup, through the runtime). */
  async pause(ref: string, pause: boolean): Promise<void> {
    const row = this.p.db.resolve(ref);
    const verb = pause ? 'pause' : 'unpause';
    if (row.status !== 'running') throw refused(`Cannot ${verb} container ${ref}: Container ${row.id} is not running`);
    if (pause && row.paused) throw refused(`Cannot pause container ${ref}: Container ${row.id} is already paused`);
    if (!pause && !row.paused) throw refused(`Cannot unpause container ${ref}: Container ${row.id} is not paused`);
    await this.p.freezer.setPaused(row, pause, ref);
    this.publish(verb, row);
  }

  async remove(req: containers.RemoveRequest, requestId: string): Promise<void> {
    const { db, paths, images, runner, exits, network, freezer, attachments, log } = this.p;
    const row = db.resolve(req.id);
    if (row.status === 'running') {
      if (!req.force) throw notAllowed('Impossible to remove a running container, please stop it first or use -f');
      // A frozen process cannot die: thaw it first.
      if (row.paused) await runner.resume(row.id).catch(() => undefined);
      await this.signal(row, SIGKILL);
      // Frozen for a copy: thawed once the SIGKILL is pending, so none of its processes runs again (the copy fails as the root goes).
      if (freezer.frozenForCopy(row.id) && !row.paused) await runner.resume(row.id).catch(() => undefined);
      if (!(await exits.untilExited(row, FORCED_REMOVE_WAIT_MS))) throw refused(`Could not stop running container, cannot remove - ${row.id}`);
    }
    await exits.settled(row.id);
    // The monitor deletes the container from the OCI runtime once it has
    // exited; only a state it left behind (or has yet to delete) is deleted here.
    if (fs.existsSync(path.join(runner.root, row.id))) await runner.forceDelete(row.id).catch(() => undefined);
    await unmountRootfs(paths.dir(row.id));
    if (isMounted(path.join(paths.dir(row.id), 'rootfs'))) throw refused(`Cannot destroy container ${row.id}: its root filesystem is still mounted`);
    await network.release(row.id);
    const orphans = db.removeContainer(row.id);
    // Attachments waiting for a start that will not come end now.
    attachments.endPending(row.id);
    fs.rmSync(paths.stateDir(row.id), { recursive: true, force: true });
    // Its execs' records go with it (their processes ended with it).
    fs.rmSync(paths.execsDir(row.id), { recursive: true, force: true });
    // rm -v: the data volumes no other container uses go too (binds never do).
    if (req.volumes) for (const dir of orphans) if (path.dirname(dir) === paths.volumes) removeTree(dir);
    // The directory is moved aside at once and deleted while the answer goes out.
    const removed = path.join(paths.trash, `${row.id}-${process.hrtime.bigint()}`);
    if (fs.existsSync(paths.dir(row.id))) fs.renameSync(paths.dir(row.id), removed);
    removeTreeSoon(removed).catch((err) => log.warn({ err, id: row.id }, 'deleting the directory of a removed container failed'));
    await images.change(() => images.release(row.id, requestId)).catch((err) => log.warn({ err }, 'releasing the image failed'));
    // Its name is free across the cluster once the answer is out (the `destroy` event releases it again if this did not get through).
    await this.p.cluster?.index.release(row.id, this.p.cluster.node).catch((err: Error) => log.warn({ err: err.message }, 'releasing the name in the cluster failed'));
    // The API edge holds `destroy` back until its DELETE answer has gone out
    // (today's CLI cancels its own DELETE when `destroy` reaches it first).
    this.publish('destroy', row);
  }

  /**
   * `rm --link /parent/alias`: that name goes (the parent keeps running with
   * what the link gave it, as in Docker 1.0). A container's own name is no
   * link: 409.
   */
  removeLink(name: string): void {
    const full = `/${name.replace(/^\/+/, '')}`;
    const slash = full.lastIndexOf('/');
    if (slash === 0) throw conflict('Conflict, cannot remove the default name of the container');
    const parent = this.p.db.byName(full.slice(0, slash));
    if (!parent || !this.p.db.removeLink(parent.id, full.slice(slash + 1))) throw notFound(`No such link: ${full}`);
  }

  /**
   * A graceful stop (stevedore down) stops the running containers, as
   * Docker's daemon does; a crash leaves them to their monitors, and the
   * next start adopts them.
   */
  async stopAll(): Promise<void> {
    const { db, log } = this.p;
    const running = db.all().filter((r) => r.status === 'running');
    // A paused container is thawed first: a frozen process takes no signal, and would outlive the stack.
    await Promise.all(running.filter((r) => r.paused).map((r) => this.pause(r.id, false).catch((err) => log.warn({ err, id: r.id }, 'unpausing at shutdown failed'))));
    await Promise.all(running.map((r) => this.stop({ id: r.id, timeout: 3 }).catch((err) => log.warn({ err, id: r.id }, 'stopping at shutdown failed'))));
  }

  /** SIGTERM, and SIGKILL when the container has not exited after `timeout` seconds (docker stop). */
  private async terminate(row: ContainerRow, timeout: number): Promise<void> {
    await this.signal(row, SIGTERM);
    if (await this.p.exits.untilExited(row, Math.max(0, timeout) * 1000)) return;
    await this.signal(row, SIGKILL);
    await this.p.exits.untilExited(row, KILL_WAIT_MS);
  }

  /** Signals the container's process; a container that has exited meanwhile is no error. */
  private async signal(row: ContainerRow, sig: number): Promise<void> {
    await this.p.runner.kill(row.id, sig).catch((err) => {
      if (this.p.db.get(row.id)?.status === 'running') throw err;
    });
  }

  /** On a cluster's node, the ID of another container that holds `name` across the cluster (none: it is now this one's). */
  private async claimed(name: string, id: string): Promise<string | undefined> {
    const c = this.p.cluster;
    return c ? c.index.claim(name, id, c.node) : undefined;
  }

  private publish(action: string, row: ContainerRow, extra: Record<string, string> = {}): void {
    this.p.outbox.publish(containerEvent(action, row, extra));
  }
}
