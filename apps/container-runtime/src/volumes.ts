// Volumes as Docker 1.0 made them at a container's first start: binds of
// host paths (created when missing), data volumes under the data root
// (filled with what the image has at that path), and the volumes of other
// containers (--volumes-from). Every spec is checked before anything is
// created, so a bad one leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { relInRoot, RootDir } from '@stevedore/archive';
import { refused } from '@stevedore/errors';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';
import type { ContainerDb, VolumeRow } from './store/container-db';

export interface VolumeMount {
  path: string;
  hostPath: string;
  rw: boolean;
  /** A data volume of Stevedore's (rm -v may delete it), not a bind of the host's. */
  managed: boolean;
}

const containerPath = (p: string, spec: string): string => {
  if (!path.posix.isAbsolute(p)) throw refused(`Invalid volume specification: ${spec}: the container path must be absolute`);
  const clean = path.posix.normalize(p).replace(/(.)\/$/, '$1');
  if (clean === '/') throw refused(`Invalid volume specification: ${spec}: a volume cannot be mounted at /`);
  return clean;
};

/** `host:container[:ro|:rw]` */
function parseBind(spec: string): { hostPath: string; path: string; rw: boolean } {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3) throw refused(`Invalid volume specification: ${spec}`);
  const [hostPath, inContainer, mode = 'rw'] = parts;
  if (!path.isAbsolute(hostPath)) throw refused(`Invalid volume specification: ${spec}: the host path must be absolute`);
  if (path.normalize(hostPath) === '/') throw refused(`Invalid bind mount '${spec}' : source can't be '/'`);
  if (mode !== 'rw' && mode !== 'ro') throw refused(`Invalid volume specification: ${spec}: the mode must be ro or rw`);
  return { hostPath: path.normalize(hostPath), path: containerPath(inContainer, spec), rw: mode === 'rw' };
}

/** `name[:ro|:rw]` */
function parseVolumesFrom(spec: string): { container: string; mode?: 'ro' | 'rw' } {
  const [container, mode, ...rest] = spec.split(':');
  if (!container || rest.length || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) throw refused(`Invalid volumes-from specification: ${spec}`);
  return { container, mode: mode as 'ro' | 'rw' | undefined };
}

interface VolumeSources {
  /** The volumes directory of the data root. */
  volumesDir: string;
  /** The container's root filesystem (mounted), where an image's content at a volume's path is found. */
  rootfs: string;
  /** A container's recorded volumes by its name or ID; throws when there is no such container. */
  volumesOf(container: string): VolumeRow[];
}

/** Works out and creates a container's volumes; the caller records them. */
function prepareVolumes(config: ContainerConfig, hostConfig: HostConfig, sources: VolumeSources): VolumeMount[] {
  // First every spec, checked: nothing is created for a start that fails here.
  const binds = (hostConfig.Binds ?? []).map(parseBind);
  const from = (hostConfig.VolumesFrom ?? []).map(parseVolumesFrom).map((f) => {
    let rows: VolumeRow[];
    try {
      rows = sources.volumesOf(f.container);
    } catch {
      throw refused(`Container ${f.container} not found. Impossible to mount its volumes`);
    }
    return { ...f, rows };
  });
  const dataPaths = Object.keys(config.Volumes ?? {}).map((p) => containerPath(p, p));

  const out = new Map<string, VolumeMount>();
  for (const f of from) {
    for (const v of f.rows) out.set(v.path, { path: v.path, hostPath: v.host_path, rw: f.mode === 'ro' ? false : Boolean(v.rw), managed: Boolean(v.managed) });
  }
  for (const b of binds) {
    // Docker 1.0 created a missing host path as a directory.
    if (!fs.existsSync(b.hostPath)) fs.mkdirSync(b.hostPath, { recursive: true });
    out.set(b.path, { ...b, managed: false });
  }
  const made: string[] = [];
  try {
    for (const p of dataPaths) {
      if (out.has(p)) continue;
      const dir = path.join(sources.volumesDir, randomBytes(32).toString('hex'));
      fs.mkdirSync(dir, { recursive: true });
      made.push(dir);
      fillFromImage(sources.rootfs, p, dir);
      out.set(p, { path: p, hostPath: dir, rw: true, managed: true });
    }
    for (const v of out.values()) makeMountPoint(sources.rootfs, v);
  } catch (err) {
    // A start that fails here leaves no data volume behind.
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return [...out.values()];
}

/** A container's volumes: made and recorded at its first start, the same ones at every later start. */
export function volumesAtStart(db: ContainerDb, volumesDir: string, id: string, config: ContainerConfig, hostConfig: HostConfig, rootfs: string): VolumeMount[] {
  const recorded = db.volumes(id);
  if (recorded.length) return recorded.map((v) => ({ path: v.path, hostPath: v.host_path, rw: Boolean(v.rw), managed: Boolean(v.managed) }));
  const volumes = prepareVolumes(config, hostConfig, { volumesDir, rootfs, volumesOf: (name) => db.volumes(db.resolve(name).id) });
  db.setVolumes(volumes.map((v) => ({ container_id: id, path: v.path, host_path: v.hostPath, rw: v.rw ? 1 : 0, managed: v.managed ? 1 : 0 })));
  return volumes;
}

/** A new data volume takes the image's content at its path (and the directory's owner and mode), found inside the root. */
function fillFromImage(rootfs: string, inContainer: string, dir: string): void {
  const source = RootDir.with(rootfs, (root) => {
    const rel = relInRoot(inContainer);
    return root.stat(rel, true)?.isDirectory() ? root.hostPathOf(rel) : undefined;
  });
  if (!source) return;
  // The container has not started: nothing in it moves while cp walks the directory.
  const st = fs.statSync(source);
  execFileSync('cp', ['-a', `${source}/.`, dir]);
  fs.chownSync(dir, st.uid, st.gid);
  fs.chmodSync(dir, st.mode & 0o7777);
}

/** The mount point in the container's root (links followed inside it): a directory, or a file for a bind of a file. */
function makeMountPoint(rootfs: string, v: VolumeMount): void {
  RootDir.with(rootfs, (root) => {
    const rel = relInRoot(v.path);
    if (root.stat(rel, true)) return;
    try {
      if (fs.statSync(v.hostPath).isDirectory()) return root.mkdirAll(rel, 0o755);
      root.mkdirAll(path.posix.dirname(rel), 0o755);
      fs.closeSync(root.create(rel, 0o644));
    } catch (err) {
      throw refused(`Cannot make the mount point of volume ${v.path} in the container: ${(err as Error).message}`);
    }
  });
}
