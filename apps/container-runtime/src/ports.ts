// Published ports, worked out at start: `PortBindings` (a host port given,
// or a free one chosen) and `PublishAllPorts` (every exposed port on a free
// host port). A host port must be free on the host (tried by binding it) and
// not given to another running container; Docker 1.0 chose free ports from
// 49153 up.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { invalid, refused } from '@stevedore/errors';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';

export interface PortMapping {
  containerPort: number;
  protocol: 'tcp' | 'udp';
  /** '' for every address of the host. */
  hostIp: string;
  hostPort: number;
}

const FREE_PORTS = { first: 49153, last: 65535 };

/** `80/tcp`, `53/udp`, `8080` (tcp). */
function parsePortKey(key: string): { port: number; protocol: 'tcp' | 'udp' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(key.trim());
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw invalid(`Invalid port specification: ${JSON.stringify(key)}`);
  return { port, protocol: (m[2] ?? 'tcp') as 'tcp' | 'udp' };
}

/** Whether a port can be bound on the host now (nothing else listens there). */
function bindable(port: number, protocol: 'tcp' | 'udp', hostIp: string): Promise<boolean> {
  const host = hostIp || '0.0.0.0';
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host, () => s.close(() => resolve(true)));
      return;
    }
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * The container's port mappings. `taken` holds `port/protocol` of host ports
 * given to other running containers.
 */
export async function resolvePorts(config: ContainerConfig, hostConfig: HostConfig, taken: Set<string>): Promise<PortMapping[]> {
  const wanted: Array<{ containerPort: number; protocol: 'tcp' | 'udp'; hostIp: string; hostPort?: number }> = [];
  for (const [key, bindings] of Object.entries(hostConfig.PortBindings ?? {})) {
    const { port, protocol } = parsePortKey(key);
    for (const b of bindings && bindings.length ? bindings : [{}]) {
      const hostIp = (b as { HostIp?: string }).HostIp ?? '';
      if (hostIp && net.isIPv4(hostIp) === false) throw invalid(`Invalid host address for port ${key}: ${JSON.stringify(hostIp)}`);
      const raw = (b as { HostPort?: string }).HostPort ?? '';
      let hostPort: number | undefined;
      if (raw !== '') {
        hostPort = Number(raw);
        if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535) throw invalid(`Invalid host port for ${key}: ${JSON.stringify(raw)}`);
      }
      wanted.push({ containerPort: port, protocol, hostIp: hostIp === '0.0.0.0' ? '' : hostIp, hostPort });
    }
  }
  if (hostConfig.PublishAllPorts) {
    const bound = new Set(Object.keys(hostConfig.PortBindings ?? {}).map((k) => Object.values(parsePortKey(k)).join('/')));
    for (const key of Object.keys(config.ExposedPorts ?? {})) {
      const { port, protocol } = parsePortKey(key);
      if (!bound.has(`${port}/${protocol}`)) wanted.push({ containerPort: port, protocol, hostIp: '' });
    }
  }

  const used = new Set(taken);
  const out: PortMapping[] = [];
  for (const w of wanted) {
    if (w.hostPort !== undefined) {
      const key = `${w.hostPort}/${w.protocol}`;
      if (used.has(key) || !(await bindable(w.hostPort, w.protocol, w.hostIp))) {
        throw refused(`Bind for ${w.hostIp || '0.0.0.0'}:${w.hostPort} failed: port is already allocated`);
      }
      used.add(key);
      out.push({ ...w, hostPort: w.hostPort });
      continue;
    }
    let chosen: number | undefined;
    for (let p = FREE_PORTS.first; p <= FREE_PORTS.last && chosen === undefined; p++) {
      if (!used.has(`${p}/${w.protocol}`) && (await bindable(p, w.protocol, w.hostIp))) chosen = p;
    }
    if (chosen === undefined) throw refused(`No free host port for ${w.containerPort}/${w.protocol} between ${FREE_PORTS.first} and ${FREE_PORTS.last}`);
    used.add(`${chosen}/${w.protocol}`);
    out.push({ ...w, hostPort: chosen });
  }
  return out;
}
