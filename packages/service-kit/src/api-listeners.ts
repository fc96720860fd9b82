// The API's listening sockets, as the supervisor and the API edge both see
// them: what a STEVEDORE_HOST entry names, how a unix socket file is made
// ready and given to the group `docker`, and how the supervisor tells an API
// edge which inherited descriptor is which host (as systemd's LISTEN_FDS
// does: the descriptors from 3 on, and a variable naming them).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TlsFiles } from '@stevedore/config';
import { dockerGroupId } from './data-root';

export type ApiHost = { kind: 'unix'; path: string } | { kind: 'tcp'; hostname: string; port: number };

/** A STEVEDORE_HOST entry: `unix:///path`, or `tcp://host:port` (an empty host is every IPv4 address, as Docker's). */
export function parseApiHost(host: string): ApiHost {
  if (host.startsWith('unix://')) return { kind: 'unix', path: host.slice('unix://'.length) };
  const m = /^tcp:\/\/([^:]*|\[[^\]]+\]):(\d+)$/.exec(host);
  if (!m) throw new Error(`STEVEDORE_HOST entry ${host} is neither unix:///path nor tcp://host:port`);
  return { kind: 'tcp', hostname: m[1].replace(/^\[|\]$/g, '') || '0.0.0.0', port: Number(m[2]) };
}

/**
 * A tcp:// host is served only with TLS, and only with client certificates
 * (Docker's --tlsverify) unless that is named unsafe: checked by the
 * supervisor before it binds the port and by the edge before it serves it.
 */
export function checkTcpApiTls(host: string, tls: TlsFiles, unsafeNoClientCerts: boolean): void {
  if (!tls.cert || !tls.key) {
    throw new Error(`Refusing to listen on ${host} without TLS: set STEVEDORE_TLS_CERT, STEVEDORE_TLS_KEY and STEVEDORE_TLS_CACERT (the CA of the client certificates)`);
  }
  // Without a CA to verify clients, whoever reaches the port is root on this host.
  if (!tls.ca && !unsafeNoClientCerts) {
    throw new Error(`Refusing to listen on ${host} without client certificates: set STEVEDORE_TLS_CACERT (or, knowing that anyone who reaches the port then drives the engine, STEVEDORE_TLS_UNSAFE_NO_CLIENT_CERTS=1)`);
  }
}

/** Before binding a unix socket: its directory exists, and a file left there (a killed stack's socket) is gone. */
export function prepareApiSocketFile(file: string): void {
  // Inside the data root the way is there already (0710, group docker); elsewhere the group must be able to reach it.
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.rmSync(file, { force: true });
}

/** After binding: 0660, group `docker` when the host has one (its members are the API's trusted clients). */
export function grantApiSocket(file: string): 'docker' | 'root' {
  fs.chmodSync(file, 0o660);
  const gid = dockerGroupId();
  if (gid !== undefined) fs.chownSync(file, 0, gid);
  return gid === undefined ? 'root' : 'docker';
}

/** Names, for an API edge, the listening sockets it inherits: `3=unix:///…,4=tcp://…`. */
export const API_LISTEN_FDS_ENV = 'STEVEDORE_API_LISTEN_FDS';

export function formatApiListenFds(fds: ReadonlyMap<string, number>): string {
  return [...fds].map(([host, fd]) => `${fd}=${host}`).join(',');
}

/**
 * The listening sockets this process inherited, by host (empty when it was
 * started without any). A named descriptor that is not a socket is an error:
 * listening on whatever it is would be worse than not starting.
 */
export function inheritedApiListeners(env: NodeJS.ProcessEnv = process.env): Map<string, number> {
  const fds = new Map<string, number>();
  for (const entry of (env[API_LISTEN_FDS_ENV] ?? '').split(',').filter(Boolean)) {
    const eq = entry.indexOf('=');
    const fd = Number(entry.slice(0, eq));
    if (eq < 0 || !Number.isInteger(fd) || fd < 3) throw new Error(`${API_LISTEN_FDS_ENV} entry ${JSON.stringify(entry)} is not fd=host`);
    let socket = false;
    try {
      socket = fs.fstatSync(fd).isSocket();
    } catch {
      // closed: not a socket either
    }
    if (!socket) throw new Error(`${API_LISTEN_FDS_ENV} names fd ${fd} for ${entry.slice(eq + 1)}, which is not an open socket`);
    fds.set(entry.slice(eq + 1), fd);
  }
  return fds;
}
