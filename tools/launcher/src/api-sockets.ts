// The API's sockets, made and held by the supervisor for as long as the stack
// runs, and handed to every API edge it starts (descriptors 3, 4, … of the
// child, named in STEVEDORE_API_LISTEN_FDS). The socket belongs to the
// supervisor, not to an edge: when an edge dies, the socket stays, clients
// that connect meanwhile wait in its backlog, and the next edge accepts them.
//
// The supervisor never accepts: in Node, listening means accepting, and a
// supervisor that accepted would take connections from the edge. So a short
// helper process inherits the bound sockets, calls listen(2) on them and
// exits; the sockets keep listening (the state is the socket's, not the
// process's) from before the first edge starts, so a port is never bound
// and idle for another local process to bind beside it, and a client that
// comes early waits in the backlog like one that comes between edges.
import { lookup } from 'node:dns/promises';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { API_LISTEN_FDS_ENV, formatApiListenFds, grantApiSocket, parseApiHost, prepareApiSocketFile } from '@stevedore/service-kit';

/** A libuv stream handle, as Node's internals make one (`fd` on unix; `close` unlinks a unix socket it bound). */
interface BoundHandle {
  readonly fd: number;
  close(): void;
}

/**
 * Node's cluster makes its shared server handles with this: bound, not yet
 * listening, not polled. It is internal but has been there since Node 0.x;
 * a Node without it fails here, at start-up, rather than silently.
 */
type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => BoundHandle | number;
const createServerHandle = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;

export class HeldApiSockets {
  private constructor(private readonly handles: Map<string, BoundHandle>) {}

  /** Binds every API host: unix sockets 0660 with the group `docker` (a stale file is replaced), TCP ports. */
  static async bind(hosts: readonly string[]): Promise<HeldApiSockets> {
    if (typeof createServerHandle !== 'function') throw new Error('this Node.js no longer has net._createServerHandle: the supervisor cannot hold the API sockets');
    const held = new HeldApiSockets(new Map());
    try {
      for (const host of new Set(hosts)) held.handles.set(host, await bindOne(host));
      listenOn(held.fds);
    } catch (err) {
      held.close();
      throw err;
    }
    return held;
  }

  /** The descriptors, in the order they are given to the child after its stdio (so from fd 3). */
  get fds(): number[] {
    return [...this.handles.values()].map((h) => h.fd);
  }

  /** The child's environment entry naming its inherited descriptors. */
  childEnv(): Record<string, string> {
    const hosts = [...this.handles.keys()];
    return { [API_LISTEN_FDS_ENV]: formatApiListenFds(new Map(hosts.map((h, i) => [h, 3 + i]))) };
  }

  /** Closes every socket; a unix socket's file goes with it (libuv unlinks the path it bound). */
  close(): void {
    for (const h of this.handles.values()) h.close();
    this.handles.clear();
  }
}

async function bindOne(host: string): Promise<BoundHandle> {
  const target = parseApiHost(host);
  const bound = (handle: BoundHandle | number): BoundHandle => {
    if (typeof handle === 'number') throw new Error(`cannot bind the API socket ${host}: ${getSystemErrorName(handle)}`);
    return handle;
  };
  if (target.kind === 'unix') {
    prepareApiSocketFile(target.path);
    const handle = bound(createServerHandle!(target.path, -1, -1));
    grantApiSocket(target.path);
    return handle;
  }
  const { address, family } = net.isIP(target.hostname) ? { address: target.hostname, family: net.isIP(target.hostname) } : await lookup(target.hostname);
  return bound(createServerHandle!(address, target.port, family));
}

/** listen(2) on each bound socket, in a helper process that exits at once (it never polls, so never accepts). */
function listenOn(fds: number[]): void {
  if (fds.length === 0) return;
  const script = `const net = require('node:net'); let left = ${fds.length};
for (let fd = 3; fd < ${3 + fds.length}; fd++) net.createServer().on('error', (e) => { console.error(e.message); process.exit(1); }).listen({ fd, backlog: 511 }, () => { if (--left === 0) process.exit(0); });`;
  const r = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe', ...fds], timeout: 10_000 });
  if (r.status !== 0) throw new Error(`cannot make the API sockets listen: ${r.error?.message ?? r.stderr.toString().trim()}`);
}
