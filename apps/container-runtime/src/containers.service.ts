// Containers: created from an image, run by their monitor, ended, removed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { containers, images } from '@stevedore/contracts';
import type { StevedoreConfig } from '@stevedore/config';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';
import { DEFAULT_TAG, splitRepoTag } from '@stevedore/docker-api';
import { conflict, notAllowed, notFound, refused, StevedoreError, asStevedoreError } from '@stevedore/errors';
import type { Logger } from '@stevedore/logging';
import { connectRedis, EventLog, type NewEvent, type Redis } from '@stevedore/redis';
import { removeTree, removeTreeSoon } from '@stevedore/archive';
import { callUnary, createServiceClient, privateDatabase, privateDir } from '@stevedore/service-kit';
import { cgroupFacts, chooseOciRuntime, enableIpv4Forwarding, ipv4Forwarding, type CgroupFacts, type OciRuntime } from './host-facts';
import { createWarnings } from './create-warnings';
import { loadSeccompProfile, type SeccompProfile } from './seccomp';
import { installAppArmorProfile } from './apparmor';
import { EventOutbox } from './event-outbox';
import { buildSpec, hostCapabilities, makeWorkingDir, resolveUser } from './oci-spec';
import { isMounted, mountRootfs, unmountRootfs } from './rootfs';
import { changes, withRootfs, type Change } from './container-fs';
import { Frame, runtimeCommand, ShimConnection, spawnShim } from './shim';
import { prepareVolumes, type VolumeMount } from './volumes';
import { BridgeNetwork } from './bridge-network';
import { resolvePorts, type PortMapping } from './ports';
import { type LinkedPorts, InterContainerPolicy } from './icc';
import { exposedPortList, linkEnv, parseLink } from './links';
import type { NetworkRow } from './store/container-db';
import { ContainerDb, type ContainerRow } from './store/container-db';
import { checkName, newContainerId, randomName } from './store/names';
import { ImageUseReconciler } from './image-use';
import { StartRecovery } from './start-recovery';

/** Docker 1.0 refused a container on a chain of this many layers (its limit of 127 parents, less the container's own two). */
const MAX_IMAGE_DEPTH = 125;

/** Docker 1.0's answer to stop, kill or restart of a paused container. */
const pausedRefusal = (verb: 'stop' | 'kill' | 'restart', ref: string, id: string) =>
  refused(`Cannot ${verb} container ${ref}: Container ${id} is paused. Unpause the container before stopping`);

const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15,
  STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, PWR: 30, SYS: 31,
};

export function parseSignal(raw: string): number {
  if (raw === '') return 9;
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n >= 1 && n <= 31) return n;
  } else {
    const n = SIGNALS[raw.toUpperCase().replace(/^SIG/, '')];
    if (n) return n;
  }
  throw refused(`Invalid signal: ${raw}`);
}

/** Attachment waiting for its container to start (docker run attaches first). */
export interface Attachment {
  wantStdout: boolean;
  wantStderr: boolean;
  wantStdin: boolean;
  onOutput(stream: 1 | 2, data: Buffer): void;
  onEnd(): void;
  pendingStdin: Buffer[];
  stdinClosed: boolean;
  connection?: ShimConnection;
  /** The monitor has been sent what was pending: stdin goes straight to it from now on. */
  onConnected?(): void;
}

function merge(user: ContainerConfig, image: ContainerConfig | undefined): ContainerConfig {
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

function networkOf(row: NetworkRow | undefined): containers.BridgeAddress | undefined {
  return row && { ipAddress: row.ip_address, ipPrefixLen: row.ip_prefix_len, gateway: row.gateway, macAddress: row.mac_address, bridge: row.bridge };
}

/** A container event as the event log takes it. */
function containerEvent(action: string, row: ContainerRow, extra: Record<string, string>): NewEvent {
  return { type: 'container', action, id: row.id, from: row.image_name, attributes: { image: row.image_name, name: row.name.replace(/^\//, ''), ...extra } };
}

export class ContainersService {
  db!: ContainerDb;
  readonly root: string;
  /** Where a removed container's directory waits for its deletion. */
  private readonly trash: string;
  /** Data volumes, one directory each. */
  private readonly volumesDir: string;
  private readonly network: BridgeNetwork;
  private readonly icc: InterContainerPolicy;
  readonly runtime: OciRuntime;
  private readonly runtimeRoot: string;
  private readonly cgroups: CgroupFacts;
  private forwarding = true;
  private readonly hostCaps = hostCapabilities();
  private readonly imagesClient: images.ImageStoreClient;
  /** The image store's record of image use, kept equal to the container records (image-use.ts). */
  private readonly imageUse: ImageUseReconciler;
  private redis!: Redis;
  private events!: EventLog;
  private outbox!: EventOutbox;
  private readonly monitors = new Map<string, ShimConnection>();
  private readonly pending = new Map<string, Set<Attachment>>();
  private readonly waiters = new Map<string, Array<(code: number) => void>>();
  /** Copies in or out of containers in progress, by container; `frozen`: the container is frozen while they last (it was running). */
  private readonly copies = new Map<string, { count: number; frozen: boolean }>();
  /** Docker's default seccomp profile (read at start-up: without it the runtime does not start). */
  private readonly seccomp: SeccompProfile;
  /** The AppArmor profile of containers, on a host that has AppArmor (loaded at start-up). */
  private appArmorProfile?: string;
  /** Containers being started: no copy begins meanwhile (see start). */
  private readonly starting = new Set<string>();
  /** Changes of a container's freezer (pause, unpause, a copy's freeze and thaw), one at a time per container. */
  private readonly freezerTurns = new Map<string, Promise<void>>();

  constructor(
    private readonly config: StevedoreConfig,
    private readonly log: Logger,
  ) {
    this.root = path.join(config.root, 'containers');
    this.seccomp = loadSeccompProfile(config.seccompProfile);
    this.trash = path.join(config.root, 'containers-removed');
    this.volumesDir = path.join(config.root, 'volumes');
    this.network = new BridgeNetwork({ bridge: config.bridge.name, subnet: config.bridge.subnet, root: config.root });
    this.icc = new InterContainerPolicy(config.bridge.name, config.bridge.icc);
    this.runtimeRoot = path.join(config.runDir, 'runtime');
    this.cgroups = cgroupFacts();
    this.runtime = chooseOciRuntime(config.runtime, (msg) => log.info(msg));
    log.info({ runtime: this.runtime }, 'OCI runtime chosen');
    this.imagesClient = createServiceClient(images.ImageStoreClient, config, 'image-store');
    this.imageUse = new ImageUseReconciler(this.imagesClient, () => this.imageUseAccount(), log);
  }

  async open(): Promise<void> {
    // Root's alone: a container's writable layer keeps what its processes made (setuid files, device nodes),
    // its volumes their modes; 0700 parents keep other users of the host away from all of it.
    privateDir(this.root);
    privateDir(this.runtimeRoot);
    privateDir(this.volumesDir);
    privateDir(path.join(this.config.root, 'network'));
    // Directories of removed containers whose deletion a stop interrupted.
    try {
      removeTree(this.trash);
    } catch (err) {
      // What cannot go now is tried again at the next start; the runtime serves meanwhile.
      this.log.warn({ err }, 'emptying the removed containers\' directory failed');
    }
    privateDir(this.trash);
    this.appArmorProfile = await installAppArmorProfile(this.config.runDir, this.config.appArmorTemplate);
    this.db = new ContainerDb(privateDatabase(path.join(this.root, 'containers.db')));
    this.redis = connectRedis(this.config.redisUrl);
    this.events = new EventLog(this.redis, this.config.redisPrefix, this.config.events);
    // What a killed runtime had not yet sent goes first.
    this.outbox = new EventOutbox(this.db, this.events, this.log);
    this.outbox.drain();
    // Bridged containers need forwarding: turned on at start-up, as Docker's daemon did (its --ip-forward, on by default).
    enableIpv4Forwarding(this.log);
    // Read once, as Docker 1.0 read its system facts at start-up: create warns from it.
    this.forwarding = ipv4Forwarding();
    await this.adopt();
    this.imageUse.start();
  }

  /**
   * A graceful stop (stevedore down) stops the running containers, as
   * Docker's daemon does; a crash leaves them to their monitors, and the
   * next start adopts them.
   */
  async close(): Promise<void> {
    // Copies in progress ended with the gRPC server's calls: their containers are thawed as they go (waited for, boundedly).
    for (const t = Date.now(); this.copies.size && Date.now() - t < 5000; ) await new Promise((r) => setTimeout(r, 50));
    const running = this.db?.all().filter((r) => r.status === 'running') ?? [];
    // A paused container is thawed first: a frozen process takes no signal, and would outlive the stack.
    await Promise.all(running.filter((r) => r.paused).map((r) => this.pause(r.id, false).catch((err) => this.log.warn({ err, id: r.id }, 'unpausing at shutdown failed'))));
    await Promise.all(running.map((r) => this.stop({ id: r.id, timeout: 3 }).catch((err) => this.log.warn({ err, id: r.id }, 'stopping at shutdown failed'))));
    for (const m of this.monitors.values()) m.close();
    await this.outbox?.flushed(2000);
    this.outbox?.close();
    this.imageUse.close();
    this.imagesClient.close();
    this.db?.close();
    await this.redis?.quit().catch(() => undefined);
  }

  dir(id: string): string {
    return path.join(this.root, id);
  }

  /** The monitor's state: short, since the attach socket's path must fit a unix socket address. */
  stateDir(id: string): string {
    const preferred = path.join(this.config.runDir, 's', id.slice(0, 12));
    if (`${preferred}/attach.sock`.length < 100) return preferred;
    return path.join('/run/stevedore', createHash('sha256').update(this.config.root).digest('hex').slice(0, 8), id.slice(0, 12));
  }

  private publish(action: string, row: ContainerRow, extra: Record<string, string> = {}): void {
    this.outbox.publish(containerEvent(action, row, extra));
  }

  private images<Req, Res>(method: (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall, req: Req, requestId: string): Promise<Res> {
    return callUnary(this.imagesClient, method as never, req, requestId).catch((err) => {
      const e = asStevedoreError(err);
      if (e.kind !== 'internal' && e.kind !== 'unavailable') throw e;
      // The call may or may not have been recorded: image use is reconciled once the store answers.
      this.imageUse.request();
      throw new StevedoreError('unavailable', `Cannot reach the image-store service: ${e.message}`);
    }) as Promise<Res>;
  }

  /** By name (with or without '/'), full ID, or unique ID prefix. */
  resolve(ref: string): ContainerRow {
    const row = this.db.byName(ref.startsWith('/') ? ref : `/${ref}`) ?? this.db.get(ref) ?? (/^[0-9a-f]+$/.test(ref) ? this.unique(this.db.byPrefix(ref)) : undefined);
    if (!row) throw notFound(`No such container: ${ref}`);
    return row;
  }

  private unique(rows: ContainerRow[]): ContainerRow | undefined {
    return rows.length === 1 ? rows[0] : undefined;
  }

  async create(req: containers.CreateRequest, requestId: string): Promise<containers.CreateResponse> {
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
    const warnings = createWarnings(config, { ...this.cgroups, ipv4Forwarding: this.forwarding });
    let name = req.name ? checkName(req.name) : '';
    if (name) {
      const taken = this.db.byName(name);
      if (taken) throw conflict(`Conflict, The name ${name.slice(1)} is already assigned to ${taken.id.slice(0, 12)}. You have to delete (or rename) that container to be able to assign ${name.slice(1)} to a container again.`);
    }
    const id = newContainerId();
    // The store's use and the container's record are one change of image use: no reconciliation comes between.
    const endChange = await this.imageUse.begin();
    const image = await this.images(this.imagesClient.useImage, { image: config.Image, user: id, running: false }, requestId).catch((err) => {
      endChange();
      const e = asStevedoreError(err);
      if (e.kind === 'notFound') {
        throw notFound(`No such image: ${config.Image} (tag: ${splitRepoTag(config.Image!).tag ?? DEFAULT_TAG})`);
      }
      throw e;
    });
    try {
      if (image.layers.length >= MAX_IMAGE_DEPTH) throw refused('Cannot create container with more than 127 parents');
      const merged = merge(config, image.configJson ? JSON.parse(image.configJson) : undefined);
      if ((merged.Cmd ?? []).length === 0 && (merged.Entrypoint ?? []).length === 0) throw refused('No command specified');
      for (let attempt = 0; !name; attempt++) {
        const candidate = `/${randomName(attempt)}`;
        if (!this.db.byName(candidate)) name = candidate;
      }
      fs.mkdirSync(this.dir(id), { recursive: true, mode: 0o700 });
      this.db.createContainer({ id, name, created: new Date().toISOString(), image_id: image.id, image_name: image.displayName, config: JSON.stringify(merged), host_config: JSON.stringify(hostConfig) });
    } catch (err) {
      await this.images(this.imagesClient.releaseImage, { user: id }, requestId).catch(() => undefined);
      fs.rmSync(this.dir(id), { recursive: true, force: true });
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw conflict(`Conflict, The name ${name.slice(1)} is already assigned. You have to delete (or rename) that container to be able to assign ${name.slice(1)} to a container again.`);
      throw err;
    } finally {
      endChange();
    }
    this.publish('create', this.db.get(id)!);
    return { id, warnings };
  }

  /** `container:NAME`: the network namespace of another running container (its bridge address, if it has one). */
  private sharedNetwork(name: string): { netnsPath: string; ipAddress?: string } {
    let other: ContainerRow;
    try {
      other = this.resolve(name);
    } catch {
      throw refused(`No such container: ${name}`);
    }
    if (other.status !== 'running' || !other.pid) throw refused(`cannot join network of a non running container: ${other.name}`);
    const net = this.db.network(other.id);
    return { netnsPath: net ? this.network.netnsPath(other.id) : `/proc/${other.pid}/ns/net`, ipAddress: net?.ip_address };
  }

  /** The containers a container links to: each running on the bridge, with what its link gives. */
  private linksOf(row: ContainerRow, hostConfig: HostConfig, bridged: boolean): Array<LinkedPorts & { alias: string; env: string[]; childId: string }> {
    const specs = (hostConfig.Links ?? []).map(parseLink);
    if (specs.length && !bridged) throw refused('Links need bridge networking (the container joins no bridge)');
    return specs.map(({ target, alias }) => {
      let linked: ContainerRow;
      try {
        linked = this.resolve(target);
      } catch {
        throw refused(`Could not get container for ${target}`);
      }
      const net = this.db.network(linked.id);
      if (linked.status !== 'running' || !net) throw refused(`Cannot link to a non running container: ${linked.name} AS ${row.name}/${alias}`);
      const config = JSON.parse(linked.config) as ContainerConfig;
      const info = { name: linked.name, ipAddress: net.ip_address, env: config.Env ?? [], exposedPorts: Object.keys(config.ExposedPorts ?? {}) };
      return { alias, childId: linked.id, ipAddress: net.ip_address, ports: exposedPortList(info.exposedPorts), env: linkEnv(row.name, alias, info) };
    });
  }

  private writeEtcFiles(
    row: ContainerRow,
    config: ContainerConfig,
    hostConfig: HostConfig,
    ipAddress?: string,
    links: Array<{ alias: string; ipAddress: string }> = [],
  ): { hostname: string; hosts: string; resolvConf: string; name: string } {
    const dir = this.dir(row.id);
    const hostname = config.Hostname || row.id.slice(0, 12);
    const files = { hostname: path.join(dir, 'hostname'), hosts: path.join(dir, 'hosts'), resolvConf: path.join(dir, 'resolv.conf'), name: hostname };
    // Mounted into the container, where every user reads them: 0644 (the container's directory keeps the host's users out).
    const world = { mode: 0o644 };
    fs.writeFileSync(files.hostname, `${hostname}\n`, world);
    const fqdn = config.Domainname ? `${hostname}.${config.Domainname} ${hostname}` : hostname;
    // On the bridge the container's own name maps to its address, as Docker's did; links add their aliases.
    const own = `${ipAddress ?? '127.0.1.1'}\t${fqdn}\n`;
    const linked = links.map((l) => `${l.ipAddress}\t${l.alias}\n`).join('');
    fs.writeFileSync(files.hosts, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n${own}${linked}`, world);
    let resolv = '';
    if (hostConfig.Dns?.length) resolv += hostConfig.Dns.map((d) => `nameserver ${d}\n`).join('');
    else {
      try {
        // The host's, without loopback name servers (they mean nothing inside).
        resolv = fs.readFileSync('/etc/resolv.conf', 'utf8').split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l)).join('\n');
      } catch {
        resolv = '';
      }
      if (!/^\s*nameserver/m.test(resolv)) resolv += '\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n';
    }
    if (hostConfig.DnsSearch?.length) resolv = `${resolv.replace(/^search .*$/m, '')}\nsearch ${hostConfig.DnsSearch.join(' ')}\n`;
    fs.writeFileSync(files.resolvConf, resolv, world);
    return files;
  }

  async start(req: containers.StartRequest, requestId: string, announce = true): Promise<void> {
    // A copy of a stopped container walks its files by name, unfrozen: none of its processes may run
    // meanwhile (they could swap a directory for a link to `/` under the walk), so the two exclude each other.
    const id = this.resolve(req.id).id;
    if (this.copies.has(id)) throw refused(`Cannot start container ${id}: a copy of its files is in progress`);
    this.starting.add(id);
    try {
      await this.startNow(req, requestId, announce);
    } catch (err) {
      // The image store heard `running` as the start began: it hears the record's word again (an unreachable store is reconciled).
      const row = this.db.get(id);
      if (row && row.status !== 'running' && asStevedoreError(err).kind !== 'unavailable') {
        await this.imageUse.change(() => this.images(this.imagesClient.useImage, { image: row.image_id, user: id, running: false }, requestId)).catch((e) => this.log.warn({ err: e, id }, 'updating the image use failed'));
      }
      throw err;
    } finally {
      this.starting.delete(id);
    }
  }

  private async startNow(req: containers.StartRequest, requestId: string, announce: boolean): Promise<void> {
    await this.settled(this.resolve(req.id).id);
    const row = this.resolve(req.id);
    if (row.status === 'running') return; // Docker 1.0: a no-op, still 204
    if (req.hostConfigJson) {
      try {
        JSON.parse(req.hostConfigJson);
      } catch (err) {
        throw refused(`Invalid host config: ${(err as Error).message}`);
      }
      this.db.setHostConfig(row.id, req.hostConfigJson);
    }
    const current = this.db.get(row.id)!;
    const config = JSON.parse(current.config) as ContainerConfig;
    const hostConfig = JSON.parse(current.host_config) as HostConfig;
    const mode = hostConfig.NetworkMode || 'default';
    const dir = this.dir(row.id);
    const image = await this.imageUse.change(() => this.images(this.imagesClient.useImage, { image: row.image_id, user: row.id, running: true }, requestId));
    const fail = (err: unknown) => {
      let message = asStevedoreError(err).message;
      // Docker's words for a missing command, whichever runtime said it: today's CLI exits 127 on them.
      if (/executable file .*not found|no such file or directory/i.test(message) && !/executable file not found in \$PATH/.test(message)) {
        const command = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])][0] ?? '';
        message = `exec: "${command}": executable file not found in $PATH (${message})`;
      }
      return new StevedoreError(asStevedoreError(err).kind === 'notFound' ? 'notFound' : 'refused', `Cannot start container ${row.id}: ${message}`);
    };
    let rootfs: string;
    try {
      rootfs = (await mountRootfs(dir, image.layers)).merged;
    } catch (err) {
      throw fail(err);
    }
    const state = this.stateDir(row.id);
    try {
      // Refused in here, as the other failures of a start: the container is recorded as exited with a `die` (today's `run --rm` waits for it).
      if (!['default', 'bridge', 'none', 'host', ''].includes(mode) && !mode.startsWith('container:')) throw refused(`invalid network mode ${mode}`);
      const bridged = ['default', 'bridge', ''].includes(mode) && !config.NetworkDisabled;
      const links = this.linksOf(row, hostConfig, bridged);
      // Docker 1.0 registered `/parent/alias` as a name of the child when the parent started.
      for (const l of links) this.db.setLink(row.id, l.alias, l.childId);
      const user = resolveUser(rootfs, config.User ?? '');
      makeWorkingDir(rootfs, config);
      const volumes = this.volumesAtStart(row.id, config, hostConfig, rootfs);
      let netnsPath: string | undefined;
      if (bridged) {
        const ports = await this.reservePorts(row.id, config, hostConfig);
        try {
          const net = await this.network.attach(row.id, ports);
          this.db.setNetworkAndPorts(
            { container_id: row.id, ip_address: net.ipAddress, ip_prefix_len: net.ipPrefixLen, gateway: net.gateway, mac_address: net.macAddress, bridge: net.bridge },
            ports.map((p) => ({ container_id: row.id, container_port: p.containerPort, protocol: p.protocol, host_ip: p.hostIp, host_port: p.hostPort })),
          );
          await this.icc.allowLinks(row.id, net.ipAddress, links);
        } finally {
          this.reservedPorts.delete(row.id);
        }
        netnsPath = this.network.netnsPath(row.id);
      }
      let ipAddress = this.db.network(row.id)?.ip_address;
      if (mode.startsWith('container:')) ({ netnsPath, ipAddress } = this.sharedNetwork(mode.slice('container:'.length)));
      const etc = this.writeEtcFiles(row, config, hostConfig, ipAddress, links);
      // The links' variables first: the container's own environment wins.
      const withLinks = { ...config, Env: [...links.flatMap((l) => l.env), ...(config.Env ?? [])] };
      const spec = buildSpec({ id: row.id, rootfs, config: withLinks, hostConfig, user, hostname: etc.name, etcFiles: etc, hostCaps: this.hostCaps, volumes, netnsPath, seccomp: this.seccomp, appArmorProfile: this.appArmorProfile });
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec), { mode: 0o600 });
      fs.rmSync(state, { recursive: true, force: true });
      privateDir(state);
      const pid = await spawnShim({
        id: row.id, bundle: dir, state, runtime: this.runtime.name, runtimeRoot: this.runtimeRoot, tty: Boolean(config.Tty),
        stdin: Boolean(config.OpenStdin), stdinOnce: Boolean(config.StdinOnce), log: path.join(dir, 'json.log'), logMaxSize: this.config.containerLogs.maxSizeBytes, logMaxFiles: this.config.containerLogs.maxFiles,
      });
      const monitor = await ShimConnection.connect(path.join(state, 'attach.sock'));
      this.watch(row.id, monitor);
      // Attachments made before start are connected before the process runs: they miss nothing.
      for (const a of this.pending.get(row.id) ?? []) await this.connectAttachment(row.id, a);
      this.pending.delete(row.id);
      await monitor.start();
      this.db.markStarted(row.id, pid, new Date().toISOString());
    } catch (err) {
      await runtimeCommand(this.runtime.name, this.runtimeRoot, ['delete', '--force', row.id]).catch(() => undefined);
      this.monitors.get(row.id)?.close();
      this.monitors.delete(row.id);
      await unmountRootfs(dir);
      await this.releaseNetwork(row.id).catch((e) => this.log.warn({ err: e, id: row.id }, 'taking a container off the bridge failed'));
      const message = asStevedoreError(err).message;
      // The process never ran: Docker reports 127 for a command it cannot find, 126 otherwise.
      const exitCode = /not found|no such file/i.test(message) ? 127 : 126;
      this.db.markExited(row.id, exitCode, new Date().toISOString());
      for (const a of this.pending.get(row.id) ?? []) a.onEnd();
      this.pending.delete(row.id);
      // `die` for a start that failed: today's CLI (run --rm) waits for it before it removes the container.
      this.publish('die', this.db.get(row.id)!, { exitCode: String(exitCode) });
      throw fail(err);
    }
    if (announce) this.publish('start', this.db.get(row.id)!);
  }

  /** Follows a running container's monitor; its connection closes when the container has exited. */
  private watch(id: string, monitor: ShimConnection): void {
    this.monitors.set(id, monitor);
    monitor.on('close', () => {
      if (this.monitors.get(id) === monitor) this.monitors.delete(id);
      this.exited(id).catch((err) => this.log.error({ err, id }, 'recording an exit failed'));
    });
  }

  /** Exits being recorded: until one settles, the container's files are still being released. */
  private readonly exiting = new Map<string, Promise<void>>();

  private exited(id: string): Promise<void> {
    const running = this.exiting.get(id);
    if (running) return running;
    const p = this.recordExit(id).finally(() => this.exiting.delete(id));
    this.exiting.set(id, p);
    return p;
  }

  /** A container's volumes: made and recorded at its first start, the same ones at every later start. */
  private volumesAtStart(id: string, config: ContainerConfig, hostConfig: HostConfig, rootfs: string): VolumeMount[] {
    const recorded = this.db.volumes(id);
    if (recorded.length) return recorded.map((v) => ({ path: v.path, hostPath: v.host_path, rw: Boolean(v.rw), managed: Boolean(v.managed) }));
    const volumes = prepareVolumes(config, hostConfig, { volumesDir: this.volumesDir, rootfs, volumesOf: (name) => this.db.volumes(this.resolve(name).id) });
    this.db.setVolumes(volumes.map((v) => ({ container_id: id, path: v.path, host_path: v.hostPath, rw: v.rw ? 1 : 0, managed: v.managed ? 1 : 0 })));
    return volumes;
  }

  /** Waits until an exit being recorded has released the root filesystem. */
  private async settled(id: string): Promise<void> {
    await this.exiting.get(id)?.catch(() => undefined);
  }

  private async recordExit(id: string): Promise<void> {
    const row = this.db.get(id);
    if (!row || row.status !== 'running') return;
    let exitCode = 137;
    let finishedAt = new Date().toISOString();
    try {
      const e = JSON.parse(fs.readFileSync(path.join(this.stateDir(id), 'exit.json'), 'utf8')) as { exitCode: number; finishedAt: string };
      exitCode = e.exitCode;
      finishedAt = e.finishedAt;
    } catch {
      // The monitor died without recording the exit: the container went with it.
      await runtimeCommand(this.runtime.name, this.runtimeRoot, ['delete', '--force', id]).catch(() => undefined);
    }
    // A stopped container has no address: inspect says so from `die` on (it shows the
    // network of running containers only) while the bridge lets go of it.
    const onBridge = Boolean(this.db.network(id));
    // The exit and its `die` (from the row as it was: a removal may follow at once) are one change:
    // a runtime killed here leaves both or neither.
    this.db.transaction(() => {
      this.db.markExited(id, exitCode, finishedAt);
      this.outbox.queue(containerEvent('die', row, { exitCode: String(exitCode) }));
    });
    this.outbox.drain();
    // The image is now used by a stopped container only (told while the root filesystem is released).
    const imageUse = this.imageUse.change(() => this.images(this.imagesClient.useImage, { image: row.image_id, user: id, running: false }, 'exit')).catch((err) => this.log.warn({ err, id }, 'updating the image use failed'));
    const network = (onBridge ? this.releaseNetwork(id) : Promise.resolve()).catch((err) => this.log.warn({ err, id }, 'taking a container off the bridge failed'));
    await unmountRootfs(this.dir(id));
    fs.rmSync(this.stateDir(id), { recursive: true, force: true });
    await Promise.all([imageUse, network]);
    for (const w of this.waiters.get(id) ?? []) w(exitCode);
    this.waiters.delete(id);
  }

  /** Start-up: running containers whose monitor lives are followed again; the others are recorded as exited. */
  private async adopt(): Promise<void> {
    for (const row of this.db.all()) {
      if (row.status !== 'running') continue;
      const sock = path.join(this.stateDir(row.id), 'attach.sock');
      try {
        const monitor = await ShimConnection.connect(sock);
        this.watch(row.id, monitor);
        this.log.info({ id: row.id }, 'adopted a running container');
        // Frozen for a copy when the runtime went away: thawed, unless its user paused it.
        const marker = this.copyFreezeMarker(row.id);
        if (fs.existsSync(marker)) {
          if (!row.paused) await runtimeCommand(this.runtime.name, this.runtimeRoot, ['resume', row.id]).catch((err) => this.log.warn({ err, id: row.id }, 'thawing after an interrupted copy failed'));
          fs.rmSync(marker, { force: true });
        }
      } catch {
        await this.exited(row.id);
        this.log.info({ id: row.id }, 'a container exited while the runtime was away');
      }
    }
    await this.recoverInterruptedStarts();
    // Bridge attachments of containers that are not running (a crash, a reboot) are undone.
    const rows = this.db.all();
    const running = new Set(rows.filter((r) => r.status === 'running').map((r) => r.id));
    await this.network.setup();
    await this.network.reconcile(running, new Map(rows.map((r) => [r.id, this.portsOf(r.id)])));
    await this.icc.setup(running);
    for (const r of rows) if (!running.has(r.id) && this.db.network(r.id)) this.db.removeNetwork(r.id);
  }

  /**
   * Starts the runtime's end interrupted (start-recovery.ts): a container
   * whose process runs is adopted, what the others left is undone; then no
   * monitor, OCI runtime state or root filesystem mount is left for a
   * container that does not run.
   */
  private async recoverInterruptedStarts(): Promise<void> {
    /** Docker's exit code for a start that failed without one of its own. */
    const START_INTERRUPTED_EXIT_CODE = 128;
    const recovery = new StartRecovery({ runtime: this.runtime.name, runtimeRoot: this.runtimeRoot, containersRoot: this.root, stateDir: (id) => this.stateDir(id) }, this.log);
    for (const row of this.db.all()) {
      if (row.status === 'running') continue;
      const adopted = await recovery.recover(row.id);
      if (!adopted) continue;
      if (adopted === 'undone') {
        // As for a start that fails while the runtime runs: exited, and `die` for the client waiting for it
        // (today's `docker run --rm` waits for it, after its start failed, before it removes the container).
        this.db.transaction(() => {
          this.db.markExited(row.id, START_INTERRUPTED_EXIT_CODE, new Date().toISOString());
          this.outbox.queue(containerEvent('die', row, { exitCode: String(START_INTERRUPTED_EXIT_CODE) }));
        });
        this.outbox.drain();
        continue;
      }
      this.db.markStarted(row.id, adopted.pid, adopted.startedAt);
      this.watch(row.id, adopted.monitor);
      this.log.info({ id: row.id, pid: adopted.pid }, 'adopted a container whose start the runtime\'s end interrupted');
      this.publish('start', this.db.get(row.id)!);
      // Ended meanwhile: recorded with its real exit.
      if (adopted.monitor.socket.destroyed) await this.exited(row.id);
    }
    await recovery.sweep(new Set(this.db.all().filter((r) => r.status === 'running').map((r) => r.id)));
  }

  /** Every container's use of its image, as the records say; one being started counts as running (the store heard so). */
  private imageUseAccount(): images.ImageUse[] {
    return this.db.all().map((r) => ({ user: r.id, image: r.image_id, running: r.status === 'running' || this.starting.has(r.id) }));
  }

  /** Takes a container off the bridge, when it is on it. */
  private async releaseNetwork(id: string): Promise<void> {
    if (!this.db.network(id)) return;
    await this.icc.revokeLinks(id);
    await this.network.detach(id, this.portsOf(id));
    this.db.removeNetwork(id);
  }

  private portsOf(id: string): PortMapping[] {
    return this.db.ports(id).map((p) => ({ containerPort: p.container_port, protocol: p.protocol as 'tcp' | 'udp', hostIp: p.host_ip, hostPort: p.host_port }));
  }

  /** Host ports chosen for a container and not yet recorded, by container. */
  private readonly reservedPorts = new Map<string, PortMapping[]>();
  private portChoice: Promise<unknown> = Promise.resolve();

  /** Works out a container's published ports, one container at a time, so that two never get the same host port. */
  private reservePorts(id: string, config: ContainerConfig, hostConfig: HostConfig): Promise<PortMapping[]> {
    const choice = this.portChoice.then(async () => {
      const taken = this.db.takenPorts();
      for (const ports of this.reservedPorts.values()) for (const p of ports) taken.add(`${p.hostPort}/${p.protocol}`);
      const ports = await resolvePorts(config, hostConfig, taken);
      this.reservedPorts.set(id, ports);
      return ports;
    });
    this.portChoice = choice.catch(() => undefined);
    return choice;
  }

  /** Resolves with the exit code once the container is not running (and its exit has settled). */
  async wait(ref: string): Promise<number> {
    let row: ContainerRow;
    try {
      row = this.resolve(ref);
    } catch {
      // Docker 1.0: a 500 whose lower-case "no such" escaped its 404 mapping.
      throw refused(`wait: no such container: ${ref}`);
    }
    if (row.status !== 'running') {
      await this.settled(row.id);
      return this.db.get(row.id)?.exit_code ?? row.exit_code;
    }
    return new Promise((resolve) => this.waiters.set(row.id, [...(this.waiters.get(row.id) ?? []), resolve]));
  }

  private async signal(row: ContainerRow, sig: number): Promise<void> {
    await runtimeCommand(this.runtime.name, this.runtimeRoot, ['kill', row.id, String(sig)]).catch((err) => {
      if (this.db.get(row.id)?.status === 'running') throw err;
    });
  }

  private async waitExit(row: ContainerRow, ms: number): Promise<boolean> {
    const done = this.wait(row.id).then(() => true);
    return Promise.race([done, new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  }

  async stop(req: containers.StopRequest): Promise<void> {
    const row = this.resolve(req.id);
    if (row.status !== 'running') return;
    if (row.paused) throw pausedRefusal('stop', req.id, row.id);
    await this.signal(row, 15);
    if (!(await this.waitExit(row, Math.max(0, req.timeout) * 1000))) {
      await this.signal(row, 9);
      await this.waitExit(row, 10_000);
    }
    this.publish('stop', this.db.get(row.id)!);
  }

  async kill(req: containers.KillRequest): Promise<void> {
    const row = this.resolve(req.id);
    const sig = parseSignal(req.signal);
    if (row.status !== 'running') return;
    if (row.paused) throw pausedRefusal('kill', req.id, row.id);
    await this.signal(row, sig);
    if (sig === 9) {
      await this.waitExit(row, 10_000);
      this.publish('kill', this.db.get(row.id)!);
    }
  }

  /** Stop then start; Docker 1.0 emitted `die` and `restart`, not stop/start. */
  async restart(req: containers.StopRequest, requestId: string): Promise<void> {
    const row = this.resolve(req.id);
    if (row.paused) throw pausedRefusal('restart', req.id, row.id);
    if (row.status === 'running') {
      await this.signal(row, 15);
      if (!(await this.waitExit(row, Math.max(0, req.timeout) * 1000))) {
        await this.signal(row, 9);
        await this.waitExit(row, 10_000);
      }
    }
    await this.start({ id: row.id, hostConfigJson: '' }, requestId, false);
    this.publish('restart', this.db.get(row.id)!);
  }

  /** Freezes (or thaws) every process of the container (the freezer cgroup, through the runtime). */
  async pause(ref: string, pause: boolean): Promise<void> {
    const row = this.resolve(ref);
    const verb = pause ? 'pause' : 'unpause';
    const runtimeVerb = pause ? 'pause' : 'resume';
    if (row.status !== 'running') throw refused(`Cannot ${verb} container ${ref}: Container ${row.id} is not running`);
    if (pause && row.paused) throw refused(`Cannot pause container ${ref}: Container ${row.id} is already paused`);
    if (!pause && !row.paused) throw refused(`Cannot unpause container ${ref}: Container ${row.id} is not paused`);
    await this.freezerTurn(row.id, async () => {
      if (this.copies.get(row.id)?.frozen) {
        // Frozen for copies in progress: the state is recorded, and the last copy's end leaves it so (thawed unless paused).
        if (!pause) fs.writeFileSync(this.copyFreezeMarker(row.id), '');
      } else {
        await runtimeCommand(this.runtime.name, this.runtimeRoot, [runtimeVerb, row.id]).catch((err) => {
          throw refused(`Cannot ${verb} container ${ref}: ${asStevedoreError(err).message}`);
        });
      }
      this.db.setPaused(row.id, pause);
    });
    this.publish(verb, this.db.get(row.id)!);
  }

  /** Runs `fn` once the container's earlier freezer changes are done, and before its later ones. */
  private async freezerTurn<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.freezerTurns.get(id) ?? Promise.resolve();
    const mine = before.then(fn);
    const turn = mine.then(
      () => undefined,
      () => undefined,
    );
    this.freezerTurns.set(id, turn);
    try {
      return await mine;
    } finally {
      if (this.freezerTurns.get(id) === turn) this.freezerTurns.delete(id);
    }
  }

  /** Says that a copy froze the container (not its user): a runtime restarted after a crash thaws it. */
  private copyFreezeMarker(id: string): string {
    return path.join(this.stateDir(id), 'frozen-for-copy');
  }

  /**
   * Runs a copy in or out of a container (cp, GET, HEAD and PUT archive,
   * POST copy) on its root filesystem, with every process of a running
   * container frozen while it lasts, as `docker pause` freezes them. The
   * copy reaches the files below the root by host paths, one name at a time;
   * a running container could swap a directory for a link to `/` between
   * two of those steps (CVE-2018-15664) and have the host's files copied out
   * or written; a frozen one changes nothing. The container is thawed when
   * the last of its copies ends (done, failed, or its client gone), unless
   * it was paused meanwhile. `signal` (the call's) is aborted when the caller
   * goes away: a copy that streams must stop on it.
   */
  async copying<T>(ref: string, requestId: string, signal: AbortSignal, fn: (rootfs: string, row: ContainerRow, signal: AbortSignal) => Promise<T>): Promise<T> {
    // An exit being recorded unmounts the root: the copy starts after it, on a root of its own.
    await this.settled(this.resolve(ref).id);
    const row = this.resolve(ref);
    const layers = await this.layersOf(row, requestId);
    return this.whileFrozen(row, () => withRootfs(this.dir(row.id), layers, (rootfs) => fn(rootfs, row, signal)));
  }

  /** Runs `fn` with a running container frozen, as copying does: for what walks its writable layer by name (diff, commit). */
  async whileFrozen<T>(row: ContainerRow, fn: () => Promise<T>): Promise<T> {
    await this.freezeForCopy(row.id);
    try {
      return await fn();
    } finally {
      await this.thawAfterCopy(row.id);
    }
  }

  /** One more copy of a container: the first one freezes it if it is running (a paused one is frozen already). */
  private freezeForCopy(id: string): Promise<void> {
    return this.freezerTurn(id, async () => {
      if (this.starting.has(id)) throw refused(`Cannot copy: container ${id} is starting`);
      const held = this.copies.get(id);
      const row = this.db.get(id);
      const running = row?.status === 'running';
      // (A container that started during a copy of it stopped is frozen by the next one.)
      if (running && !row.paused && !held?.frozen) {
        const marker = this.copyFreezeMarker(id);
        fs.writeFileSync(marker, '');
        await runtimeCommand(this.runtime.name, this.runtimeRoot, ['pause', id]).catch((err) => {
          fs.rmSync(marker, { force: true });
          throw refused(`Cannot copy: pausing container ${id} failed: ${asStevedoreError(err).message}`);
        });
      }
      if (held) {
        held.count++;
        held.frozen ||= running;
      } else this.copies.set(id, { count: 1, frozen: running });
    });
  }

  /** One copy fewer: after the last one the container is thawed, unless it is paused (or gone). */
  private thawAfterCopy(id: string): Promise<void> {
    return this.freezerTurn(id, async () => {
      const held = this.copies.get(id);
      if (!held || --held.count > 0) return;
      this.copies.delete(id);
      const row = this.db.get(id);
      if (held.frozen && row?.status === 'running' && !row.paused) {
        await runtimeCommand(this.runtime.name, this.runtimeRoot, ['resume', id]).catch((err) => this.log.warn({ err, id }, 'thawing a container after a copy failed'));
      }
      fs.rmSync(this.copyFreezeMarker(id), { force: true });
    });
  }

  /** The container's processes: `ps` of the host, restricted to the container's pids. */
  async top(ref: string, psArgs: string): Promise<{ titles: string[]; processes: string[][] }> {
    const row = this.resolve(ref);
    if (row.status !== 'running') throw refused(`Container ${row.id} is not running`);
    const pids = new Set((await runtimeCommand(this.runtime.name, this.runtimeRoot, ['ps', '--format', 'json', row.id]).then((o) => JSON.parse(o) as number[])).map(String));
    const args = (psArgs || '-ef').split(/\s+/).filter(Boolean);
    const { execFile } = await import('node:child_process');
    const out = await new Promise<string>((resolve, reject) =>
      execFile('ps', args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => (err ? reject(refused(`Error running ps: ${err.message}`)) : resolve(stdout))),
    );
    const lines = out.trimEnd().split('\n');
    const titles = lines[0].trim().split(/\s+/);
    const pidCol = titles.indexOf('PID');
    if (pidCol < 0) throw refused(`Couldn't find PID field in ps output`);
    const processes: string[][] = [];
    for (const line of lines.slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (!pids.has(fields[pidCol])) continue;
      // The last column keeps its spaces (the command line).
      processes.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]);
    }
    return { titles, processes };
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
    const parent = this.db.byName(full.slice(0, slash));
    if (!parent || !this.db.removeLink(parent.id, full.slice(slash + 1))) throw notFound(`No such link: ${full}`);
  }

  async remove(req: containers.RemoveRequest, requestId: string): Promise<void> {
    const row = this.resolve(req.id);
    if (row.status === 'running') {
      if (!req.force) throw notAllowed('Impossible to remove a running container, please stop it first or use -f');
      // A frozen process cannot die: thaw it first.
      if (row.paused) await runtimeCommand(this.runtime.name, this.runtimeRoot, ['resume', row.id]).catch(() => undefined);
      await this.signal(row, 9);
      // Frozen for a copy: thawed once the SIGKILL is pending, so none of its processes runs again (the copy fails as the root goes).
      if (this.copies.get(row.id)?.frozen && !row.paused) await runtimeCommand(this.runtime.name, this.runtimeRoot, ['resume', row.id]).catch(() => undefined);
      if (!(await this.waitExit(row, 15_000))) throw refused(`Could not stop running container, cannot remove - ${row.id}`);
    }
    await this.settled(row.id);
    // The monitor deletes the container from the OCI runtime once it has
    // exited; only a state it left behind (or has yet to delete) is deleted here.
    if (fs.existsSync(path.join(this.runtimeRoot, row.id))) {
      await runtimeCommand(this.runtime.name, this.runtimeRoot, ['delete', '--force', row.id]).catch(() => undefined);
    }
    await unmountRootfs(this.dir(row.id));
    if (isMounted(path.join(this.dir(row.id), 'rootfs'))) throw refused(`Cannot destroy container ${row.id}: its root filesystem is still mounted`);
    await this.releaseNetwork(row.id);
    const orphans = this.db.removeContainer(row.id);
    // Attachments waiting for a start that will not come end now.
    for (const a of this.pending.get(row.id) ?? []) a.onEnd();
    this.pending.delete(row.id);
    fs.rmSync(this.stateDir(row.id), { recursive: true, force: true });
    // rm -v: the data volumes no other container uses go too (binds never do).
    if (req.volumes) for (const dir of orphans) if (path.dirname(dir) === this.volumesDir) removeTree(dir);
    // The directory is moved aside at once and deleted while the answer goes out.
    const removed = path.join(this.trash, `${row.id}-${process.hrtime.bigint()}`);
    if (fs.existsSync(this.dir(row.id))) fs.renameSync(this.dir(row.id), removed);
    removeTreeSoon(removed).catch((err) => this.log.warn({ err, id: row.id }, 'deleting the directory of a removed container failed'));
    await this.imageUse.change(() => this.images(this.imagesClient.releaseImage, { user: row.id }, requestId)).catch((err) => this.log.warn({ err }, 'releasing the image failed'));
    // The API edge holds `destroy` back until its DELETE answer has gone out
    // (today's CLI cancels its own DELETE when `destroy` reaches it first).
    this.publish('destroy', row);
  }

  toMessage(row: ContainerRow, imageName = row.image_name): containers.Container {
    const config = JSON.parse(row.config) as ContainerConfig;
    const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
    return {
      id: row.id,
      name: row.name,
      created: row.created,
      path: args[0] ?? '',
      args: args.slice(1),
      configJson: row.config,
      hostConfigJson: row.host_config,
      image: row.image_id,
      imageName,
      state: {
        running: row.status === 'running',
        paused: Boolean(row.paused),
        pid: row.pid,
        exitCode: row.exit_code,
        startedAt: row.started_at,
        finishedAt: row.finished_at,
        neverStarted: row.status === 'created',
      },
      hostnamePath: path.join(this.dir(row.id), 'hostname'),
      hostsPath: path.join(this.dir(row.id), 'hosts'),
      resolvConfPath: path.join(this.dir(row.id), 'resolv.conf'),
      driver: 'overlay',
      execDriver: `${this.runtime.name}-${this.runtime.version}`,
      sizeRw: 0,
      sizeRootFs: 0,
      volumes: this.db.volumes(row.id).map((v) => ({ path: v.path, hostPath: v.host_path, rw: Boolean(v.rw) })),
      network: row.status === 'running' ? networkOf(this.db.network(row.id)) : undefined,
      ports: row.status === 'running' ? this.portsOf(row.id) : [],
      linkNames: this.db.linkNames(row.id),
    };
  }

  async list(req: containers.ListRequest, requestId: string): Promise<containers.Container[]> {
    const rows = this.db.all();
    const all = req.all || req.limit > 0 || Boolean(req.since) || Boolean(req.before);
    const before = req.before ? this.resolveForList(req.before) : undefined;
    const since = req.since ? this.resolveForList(req.since) : undefined;
    const out: ContainerRow[] = [];
    let skipping = Boolean(before);
    for (const r of rows) {
      if (skipping) {
        if (r.id === before!.id) skipping = false;
        continue;
      }
      if (since && r.id === since.id) break;
      if (!all && r.status !== 'running') continue;
      out.push(r);
      if (req.limit > 0 && out.length >= req.limit) break;
    }
    const imageIds = [...new Set(out.map((r) => r.image_id))];
    const names = out.length ? (await this.images(this.imagesClient.imageNames, { ids: imageIds }, requestId)).names : {};
    // With `size`: the writable layer, and the whole root filesystem (that plus the image's layers).
    const imageSizes = new Map<string, number>();
    if (req.size) {
      for (const id of imageIds) {
        const r = await this.images(this.imagesClient.inspect, { name: id }, requestId).catch(() => undefined);
        imageSizes.set(id, r?.virtualSize ?? 0);
      }
    }
    return out.map((r) => {
      const m = this.toMessage(r, names[r.image_id] ?? r.image_id.slice(0, 12));
      if (req.size) {
        m.sizeRw = dirSize(path.join(this.dir(r.id), 'upper'));
        m.sizeRootFs = m.sizeRw + (imageSizes.get(r.image_id) ?? 0);
      }
      return m;
    });
  }

  private resolveForList(ref: string): ContainerRow {
    try {
      return this.resolve(ref);
    } catch {
      throw refused(`Could not find container with name or id ${ref}`);
    }
  }

  /** Connects an attachment to a running container's monitor. */
  async connectAttachment(id: string, a: Attachment): Promise<void> {
    const conn = await ShimConnection.connect(path.join(this.stateDir(id), 'attach.sock'));
    a.connection = conn;
    conn.on('frame', (type: number, payload: Buffer) => {
      if (type === Frame.stdout && a.wantStdout) a.onOutput(1, payload);
      else if (type === Frame.stderr && a.wantStderr) a.onOutput(2, payload);
    });
    conn.on('close', () => a.onEnd());
    if (a.wantStdout || a.wantStderr) await conn.subscribe();
    for (const chunk of a.pendingStdin) conn.send(Frame.stdin, chunk);
    a.pendingStdin = [];
    if (a.stdinClosed) conn.send(Frame.stdinClosed);
    a.onConnected?.();
  }

  /**
   * Attaches to a container: connected now if it runs, otherwise at its next
   * start (as Docker's attach waited on a stopped container: `start -a`).
   */
  async attach(id: string, a: Attachment): Promise<'attached' | 'pending' | 'not-running'> {
    const row = this.resolve(id);
    if (row.status === 'running' && this.monitors.has(row.id)) {
      await this.connectAttachment(row.id, a);
      return 'attached';
    }
    if (row.status === 'created' || row.status === 'exited') {
      this.pending.set(row.id, new Set([...(this.pending.get(row.id) ?? []), a]));
      return 'pending';
    }
    return 'not-running';
  }

  detach(id: string, a: Attachment): void {
    this.pending.get(id)?.delete(a);
    a.connection?.close();
  }

  async resize(req: containers.ResizeRequest): Promise<void> {
    const row = this.resolve(req.id);
    if (row.status !== 'running') throw refused(`Cannot resize container ${row.id}: it is not running`);
    const conn = await ShimConnection.connect(path.join(this.stateDir(row.id), 'attach.sock'));
    conn.send(Frame.resize, `${req.height} ${req.width}`);
    conn.socket.end();
  }

  /** The image layers under a container (top first). */
  async layersOf(row: ContainerRow, requestId: string): Promise<string[]> {
    return (await this.images(this.imagesClient.useImage, { image: row.image_id, user: row.id, running: row.status === 'running' }, requestId)).layers;
  }

  async changes(ref: string, requestId: string): Promise<Change[]> {
    const row = this.resolve(ref);
    const layers = await this.layersOf(row, requestId);
    return this.whileFrozen(row, async () => changes(this.dir(row.id), layers));
  }

  exported(row: ContainerRow): void {
    this.publish('export', row);
  }

  logFiles(id: string): string[] {
    const base = path.join(this.dir(id), 'json.log');
    const files: string[] = [];
    for (let i = this.config.containerLogs.maxFiles; i >= 1; i--) if (fs.existsSync(`${base}.${i}`)) files.push(`${base}.${i}`);
    if (fs.existsSync(base)) files.push(base);
    return files;
  }

  counts() {
    return this.db.counts();
  }
}

function dirSize(dir: string): number {
  let size = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) size += fs.lstatSync(p).size;
    }
  };
  walk(dir);
  return size;
}
