// The container answers per API version (VERSIONS.md G9, G13; ENDPOINTS.md #1, #4).
import { containerConfigText, hostConfigText } from '@stevedore/contracts';
import type { containers } from '@stevedore/contracts';
import { sortedDeep, type ContainerConfig, type HostConfig } from '@stevedore/docker-api';

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Docker 1.0's human durations (units.HumanDuration). */
function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.floor(m / 60);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 3) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${(h / 24 / 365).toFixed(6)} years`;
}

function statusText(s: containers.ContainerState | undefined, now = Date.now()): string {
  if (!s) return '';
  if (s.running) return `Up ${humanDuration(now - Date.parse(s.startedAt))}${s.paused ? ' (Paused)' : ''}`;
  if (!s.finishedAt) return '';
  return `Exited (${s.exitCode}) ${humanDuration(now - Date.parse(s.finishedAt))} ago`;
}

/**
 * `Command` of the list: the path and arguments, an argument with a space in
 * single quotes. Docker 1.0 stored it as `"<text>"` and counted on reading
 * that back as a JSON string: when the text has a `"` or a `\`, what comes
 * out is whatever that reading gives, or the text with its quotes.
 */
export function commandText(c: containers.Container): string {
  const quoted = `"${[c.path, ...c.args].map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}"`;
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return quoted;
  }
}

/** Docker 1.0's host config structure, in its order: only its keys (it decoded the body into it), LxcConf only as its list of `{Key, Value}`. */
function hostConfigOf(c: containers.Container): Required<Pick<HostConfig, 'Binds' | 'ContainerIDFile' | 'LxcConf' | 'Privileged' | 'PortBindings' | 'Links' | 'PublishAllPorts' | 'Dns' | 'DnsSearch' | 'VolumesFrom' | 'NetworkMode'>> {
  const h = hostConfigText.decode(c.hostConfigJson) ?? {};
  return {
    Binds: h.Binds ?? null,
    ContainerIDFile: h.ContainerIDFile ?? '',
    LxcConf: Array.isArray(h.LxcConf) ? h.LxcConf : null,
    Privileged: h.Privileged ?? false,
    PortBindings: h.PortBindings ?? {},
    Links: h.Links ?? null,
    PublishAllPorts: h.PublishAllPorts ?? false,
    Dns: h.Dns ?? null,
    DnsSearch: h.DnsSearch ?? null,
    VolumesFrom: h.VolumesFrom ?? null,
    NetworkMode: h.NetworkMode ?? '',
  };
}

function stateOf(c: containers.Container) {
  const s = c.state!;
  return {
    Running: s.running,
    Paused: s.paused,
    Pid: s.pid,
    ExitCode: s.exitCode,
    StartedAt: s.startedAt || ZERO_TIME,
    FinishedAt: s.finishedAt || ZERO_TIME,
    // Not in Docker 1.0; today's clients read it.
    Status: s.paused ? 'paused' : s.running ? 'running' : s.neverStarted ? 'created' : 'exited',
  };
}

interface PortEntry {
  key: string;
  privatePort: number;
  type: string;
  binding?: { ip: string; publicPort: number };
}

/** While the container is on the bridge: its exposed ports, each with its host binding when published. */
function portsOf(c: containers.Container): PortEntry[] {
  if (!c.network) return [];
  const out: PortEntry[] = c.ports.map((p) => ({ key: `${p.containerPort}/${p.protocol}`, privatePort: p.containerPort, type: p.protocol, binding: { ip: p.hostIp || '0.0.0.0', publicPort: p.hostPort } }));
  const exposed = Object.keys(containerConfigText.decode(c.configJson)?.ExposedPorts ?? {});
  for (const key of exposed) {
    const [port, type = 'tcp'] = key.split('/');
    if (!out.some((e) => e.key === `${port}/${type}`)) out.push({ key: `${port}/${type}`, privatePort: Number(port), type });
  }
  return out;
}

/** The container's address on the bridge and its ports while it has one; empty values (Ports null) otherwise, in the structure's order. */
function networkSettings(c: containers.Container) {
  const n = c.network;
  let ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | null = null;
  if (n) {
    ports = {};
    for (const p of portsOf(c)) {
      if (!p.binding) ports[p.key] ??= null;
      else (ports[p.key] ??= []).push({ HostIp: p.binding.ip, HostPort: String(p.binding.publicPort) });
    }
  }
  return { IPAddress: n?.ipAddress ?? '', IPPrefixLen: n?.ipPrefixLen ?? 0, Gateway: n?.gateway ?? '', Bridge: n?.bridge ?? '', PortMapping: null, Ports: ports };
}

/**
 * The container's Config with every key Docker 1.0's config structure had,
 * in its order (empty ones as Go marshalled them), whatever the create body
 * left out; the host name is the short ID when none was given, as 1.0 set it.
 */
function configOf(c: containers.Container): ContainerConfig {
  const given = containerConfigText.decode(c.configJson) ?? {};
  const full: Required<ContainerConfig> = {
    Hostname: c.id.slice(0, 12), Domainname: '', User: '', Memory: 0, MemorySwap: 0, CpuShares: 0, Cpuset: '',
    AttachStdin: false, AttachStdout: false, AttachStderr: false, PortSpecs: null, ExposedPorts: null, Tty: false,
    OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null,
    NetworkDisabled: false, OnBuild: null,
  };
  // Only Docker 1.0's keys: it decoded the body into its struct, so other fields of a create body (Dns, VolumesFrom, … of older docs) are not kept.
  for (const k of Object.keys(full) as Array<keyof ContainerConfig>) {
    const v = given[k];
    if (v !== undefined && !(k === 'Hostname' && !v)) (full as Record<string, unknown>)[k] = v;
  }
  return full;
}

/** v1.12: CamelCase with `Id`, keys sorted at every depth (the object went through Docker 1.0's key/value type). */
export function toContainerInspectV1_12(c: containers.Container) {
  return sortedDeep({
    Args: c.args,
    Config: configOf(c),
    Created: c.created,
    Driver: c.driver,
    ExecDriver: c.execDriver,
    HostConfig: hostConfigOf(c),
    HostnamePath: c.hostnamePath,
    HostsPath: c.hostsPath,
    Id: c.id,
    Image: c.image,
    MountLabel: '',
    Name: c.name,
    NetworkSettings: networkSettings(c),
    Path: c.path,
    ProcessLabel: '',
    ResolvConfPath: c.resolvConfPath,
    State: stateOf(c),
    ...volumesOf(c),
  });
}

/** `Volumes` (container path → host path) and `VolumesRW` (container path → writable). */
function volumesOf(c: containers.Container): { Volumes: Record<string, string>; VolumesRW: Record<string, boolean> } {
  return {
    Volumes: Object.fromEntries(c.volumes.map((v) => [v.path, v.hostPath])),
    VolumesRW: Object.fromEntries(c.volumes.map((v) => [v.path, v.rw])),
  };
}

/** Before v1.12: the stored structure, `ID`, in its field order, HostConfig last. */
export function toContainerInspectV1_0(c: containers.Container) {
  return {
    ID: c.id,
    Created: c.created,
    Path: c.path,
    Args: c.args,
    Config: configOf(c),
    State: stateOf(c),
    Image: c.image,
    NetworkSettings: networkSettings(c),
    ResolvConfPath: c.resolvConfPath,
    HostnamePath: c.hostnamePath,
    HostsPath: c.hostsPath,
    Name: c.name,
    Driver: c.driver,
    ExecDriver: c.execDriver,
    MountLabel: '',
    ProcessLabel: '',
    ...volumesOf(c),
    HostConfig: hostConfigOf(c),
  };
}

interface ListEntry {
  Command: string;
  Created: number;
  Id: string;
  Image: string;
  Names: string[];
  Ports: unknown;
  SizeRootFs?: number;
  SizeRw?: number;
  Status?: string;
}

function listEntry(c: containers.Container, size: boolean, ports: unknown): ListEntry {
  // Keys in Docker 1.0's (sorted) order, the sizes before Status.
  const e: ListEntry = { Command: commandText(c), Created: Math.floor(Date.parse(c.created) / 1000), Id: c.id, Image: c.imageName, Names: [c.name, ...c.linkNames], Ports: ports };
  if (size) {
    e.SizeRootFs = c.sizeRootFs;
    e.SizeRw = c.sizeRw;
  }
  e.Status = statusText(c.state);
  return e;
}

/** v1.5 and later: `Ports` a list of objects (`IP` and `PublicPort` only when published). */
export const toContainerListV1_5 = (c: containers.Container, size: boolean) =>
  listEntry(
    c,
    size,
    portsOf(c).map((p) => (p.binding ? { IP: p.binding.ip, PrivatePort: p.privatePort, PublicPort: p.binding.publicPort, Type: p.type } : { PrivatePort: p.privatePort, Type: p.type })),
  );

/**
 * Before v1.5: `Ports` one string, `IP:public->private/type` or
 * `private/type`, unpublished first, then by public port (Docker 1.0's own
 * answer here was a bug: always []).
 */
export const toContainerListV1_0 = (c: containers.Container, size: boolean) =>
  listEntry(
    c,
    size,
    portsOf(c)
      .sort((a, b) => (a.binding?.publicPort ?? 0) - (b.binding?.publicPort ?? 0))
      .map((p) => (p.binding ? `${p.binding.ip}:${p.binding.publicPort}->${p.privatePort}/${p.type}` : `${p.privatePort}/${p.type}`))
      .join(', '),
  );
