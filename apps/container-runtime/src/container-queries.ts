// What is asked about containers without changing them: inspect, the list
// (ps, with its limit, since, before and sizes), top, and diff.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { containers } from '@stevedore/contracts';
import type { ContainerConfig } from '@stevedore/docker-api';
import { refused } from '@stevedore/errors';
import { changes, type Change } from './container-fs';
import { etcFilePaths } from './container-files';
import type { ContainerImages } from './container-images';
import type { ContainerNetwork } from './container-network';
import type { ContainerPaths } from './container-paths';
import type { ContainerFreezer } from './freezer';
import type { OciRuntimeRunner } from './oci-runtime';
import type { ContainerDb, ContainerRow, NetworkRow } from './store/container-db';

export interface QueryParts {
  db: ContainerDb;
  paths: ContainerPaths;
  images: ContainerImages;
  runner: OciRuntimeRunner;
  network: ContainerNetwork;
  freezer: ContainerFreezer;
}

function bridgeAddress(row: NetworkRow | undefined): containers.BridgeAddress | undefined {
  return row && { ipAddress: row.ip_address, ipPrefixLen: row.ip_prefix_len, gateway: row.gateway, macAddress: row.mac_address, bridge: row.bridge };
}

/** The bytes of the regular files below `dir` (what `ps -s` shows of a writable layer). */
export function dirSize(dir: string): number {
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

export class ContainerQueries {
  constructor(private readonly p: QueryParts) {}

  /** By full ID; undefined once removed. */
  byId(id: string): ContainerRow | undefined {
    return this.p.db.get(id);
  }

  /** By name (with or without '/'), full ID, or unique ID prefix. */
  resolve(ref: string): ContainerRow {
    return this.p.db.resolve(ref);
  }

  inspect(ref: string): containers.Container {
    return this.toMessage(this.p.db.resolve(ref));
  }

  async list(req: containers.ListRequest, requestId: string): Promise<containers.Container[]> {
    const { db, paths, images } = this.p;
    const rows = db.all();
    const all = req.all || req.limit > 0 || Boolean(req.since || req.before || req.sinceCreated || req.beforeCreated);
    const before = req.before ? this.resolveForList(req.before) : undefined;
    const since = req.since ? this.resolveForList(req.since) : undefined;
    const out: ContainerRow[] = [];
    // Newest first: `before` skips down to that container, `since` stops at it.
    let skipping = Boolean(before);
    for (const r of rows) {
      if (skipping) {
        if (r.id === before!.id) skipping = false;
        continue;
      }
      if (since && r.id === since.id) break;
      // A cluster's bounds, by creation time (the container named is on some node, maybe this one).
      if (req.beforeCreated && r.created >= req.beforeCreated) continue;
      if (req.sinceCreated && r.created <= req.sinceCreated) break;
      if (!all && r.status !== 'running') continue;
      out.push(r);
      if (req.limit > 0 && out.length >= req.limit) break;
    }
    const imageIds = [...new Set(out.map((r) => r.image_id))];
    const names = out.length ? await images.names(imageIds, requestId) : {};
    // With `size`: the writable layer, and the whole root filesystem (that plus the image's layers).
    const imageSizes = new Map<string, number>();
    if (req.size) for (const id of imageIds) imageSizes.set(id, (await images.virtualSize(id, requestId)) ?? 0);
    return out.map((r) => {
      const m = this.toMessage(r, names[r.image_id] ?? r.image_id.slice(0, 12));
      if (req.size) {
        m.sizeRw = dirSize(path.join(paths.dir(r.id), 'upper'));
        m.sizeRootFs = m.sizeRw + (imageSizes.get(r.image_id) ?? 0);
      }
      return m;
    });
  }

  /** The container's processes: `ps` of the host, restricted to the container's pids. */
  async top(ref: string, psArgs: string): Promise<{ titles: string[]; processes: string[][] }> {
    const row = this.p.db.resolve(ref);
    if (row.status !== 'running') throw refused(`Container ${row.id} is not running`);
    const pids = new Set((await this.p.runner.pids(row.id)).map(String));
    const args = (psArgs || '-ef').split(/\s+/).filter(Boolean);
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

  /** `docker diff`: walked by name, so a running container is frozen meanwhile, as for a copy. */
  async changes(ref: string, requestId: string): Promise<Change[]> {
    const row = this.p.db.resolve(ref);
    const layers = await this.p.images.layersOf(row, requestId);
    return this.p.freezer.whileFrozen(row, async () => changes(this.p.paths.dir(row.id), layers));
  }

  counts(): { total: number; running: number; paused: number } {
    return this.p.db.counts();
  }

  private toMessage(row: ContainerRow, imageName = row.image_name): containers.Container {
    const { db, network, runner } = this.p;
    const config = JSON.parse(row.config) as ContainerConfig;
    const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
    const files = etcFilePaths(this.p.paths.dir(row.id));
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
      hostnamePath: files.hostname,
      hostsPath: files.hosts,
      resolvConfPath: files.resolvConf,
      driver: 'overlay',
      execDriver: `${runner.runtime.name}-${runner.runtime.version}`,
      sizeRw: 0,
      sizeRootFs: 0,
      volumes: db.volumes(row.id).map((v) => ({ path: v.path, hostPath: v.host_path, rw: Boolean(v.rw) })),
      network: row.status === 'running' ? bridgeAddress(db.network(row.id)) : undefined,
      ports: row.status === 'running' ? network.portsOf(row.id) : [],
      linkNames: db.linkNames(row.id),
    };
  }

  private resolveForList(ref: string): ContainerRow {
    try {
      return this.p.db.resolve(ref);
    } catch {
      throw refused(`Could not find container with name or id ${ref}`);
    }
  }
}
