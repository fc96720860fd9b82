// Links (`--link name:alias`), as Docker 1.0 gave them: the linked
// container's address under the alias in /etc/hosts, and environment
// variables naming it, its exposed ports and its own environment.
import { refused } from '@stevedore/errors';

export interface LinkTarget {
  /** The linked container's name, with its leading '/'. */
  name: string;
  ipAddress: string;
  env: string[];
  exposedPorts: string[];
}

/** `name:alias`, `/name:/parent/alias`, or `name` (the alias is then the name). */
export function parseLink(spec: string): { target: string; alias: string } {
  const [rawTarget, rawAlias, ...rest] = spec.split(':');
  const target = (rawTarget ?? '').replace(/^\//, '');
  const alias = (rawAlias ?? target).split('/').filter(Boolean).pop() ?? '';
  if (!target || !alias || rest.length) throw refused(`Invalid link specification: ${JSON.stringify(spec)} (name:alias expected)`);
  return { target, alias };
}

/** `ExposedPorts` keys (`80/tcp`, `53/udp`, `8080`) as port and protocol, lowest first. */
export function exposedPortList(keys: string[]): Array<{ port: number; proto: string }> {
  return keys
    .map((key) => {
      const [port, proto = 'tcp'] = key.split('/');
      return { port: Number(port), proto };
    })
    .sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}

/** The environment a link gives: ALIAS_NAME, ALIAS_PORT…, ALIAS_ENV_… */
export function linkEnv(parentName: string, alias: string, t: LinkTarget): string[] {
  const prefix = alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const env = [`${prefix}_NAME=${parentName}/${alias}`];
  const ports = exposedPortList(t.exposedPorts);
  if (ports.length) env.push(`${prefix}_PORT=${ports[0].proto}://${t.ipAddress}:${ports[0].port}`);
  for (const { port, proto } of ports) {
    const p = `${prefix}_PORT_${port}_${proto.toUpperCase()}`;
    env.push(`${p}=${proto}://${t.ipAddress}:${port}`, `${p}_ADDR=${t.ipAddress}`, `${p}_PORT=${port}`, `${p}_PROTO=${proto}`);
  }
  for (const e of t.env) {
    // Docker 1.0 passed NAME=value pairs only (a value holding '=' was left out), and not HOME or PATH.
    const parts = e.split('=');
    if (parts.length !== 2 || parts[0] === 'HOME' || parts[0] === 'PATH') continue;
    env.push(`${prefix}_ENV_${parts[0]}=${parts[1]}`);
  }
  return env;
}
