// The ContainerRuntime gRPC service: thin adapters over the runtime's parts,
// and the relay of an attachment between the API edge and a container's monitor.
import type * as grpc from '@grpc/grpc-js';
import type { containers } from '@stevedore/contracts';
import type { ContainerConfig } from '@stevedore/docker-api';
import { headerThenBytes, sendBytes, writeWithBackpressure, type ServiceHandlers } from '@stevedore/service-kit';
import type { Readable } from 'node:stream';
import { asStevedoreError, refused } from '@stevedore/errors';
import type { Attachment, Attachments } from './attachments';
import type { ContainerCopies } from './container-copies';
import { diffTar, extractInto, pathTar, rootfsTar, statPath } from './container-fs';
import type { ContainerLifecycle } from './container-lifecycle';
import type { ContainerLogs } from './container-logs';
import type { ContainerPaths } from './container-paths';
import type { ContainerQueries } from './container-queries';
import { streamStats } from './container-stats';
import type { Execs } from './execs';
import type { ExitMonitor } from './exit-monitor';
import type { ContainerFreezer } from './freezer';
import { cgroupFacts, ipv4Forwarding } from './host-facts';
import type { OciRuntimeRunner } from './oci-runtime';
import { Frame, type ShimConnection } from '@stevedore/contracts';

/** Stdin held for an attachment whose container has not started; past it, the edge is held back. */
const PENDING_STDIN_BYTES = 1024 * 1024;

/** The parts the service's calls go to. */
export interface RuntimeParts {
  lifecycle: ContainerLifecycle;
  queries: ContainerQueries;
  exits: ExitMonitor;
  copies: ContainerCopies;
  freezer: ContainerFreezer;
  attachments: Attachments;
  logs: ContainerLogs;
  execs: Execs;
  paths: ContainerPaths;
  runner: OciRuntimeRunner;
  /**
   * The data root an API edge names (AttachOpen.direct_root) to read a
   * monitor's output itself: set on a single-host stack, where the edge runs
   * beside this runtime; undefined on a cluster's node.
   */
  directRoot?: string;
}

export class ContainerRuntimeRpc {
  constructor(private readonly parts: RuntimeParts) {}

  handlers(): ServiceHandlers<typeof containers.ContainerRuntimeService> {
    const { lifecycle, queries, exits, copies, freezer, logs, paths, runner } = this.parts;
    return {
      info: async () => {
        const counts = queries.counts();
        const cgroups = cgroupFacts();
        return {
          containers: counts.total,
          running: counts.running - counts.paused,
          paused: counts.paused,
          stopped: counts.total - counts.running,
          ociRuntime: runner.runtime.name,
          ociRuntimeVersion: runner.runtime.version,
          memoryLimit: cgroups.memoryLimit,
          swapLimit: cgroups.swapLimit,
          ipv4Forwarding: ipv4Forwarding(),
          cgroupVersion: cgroups.version,
        };
      },
      create: (req, ctx) => lifecycle.create(req, ctx.requestId),
      start: async (req, ctx) => {
        await lifecycle.start(req, ctx.requestId);
        return {};
      },
      wait: async (req) => ({ statusCode: await exits.wait(req.id) }),
      inspect: async (req) => queries.inspect(req.id),
      list: async (req, ctx) => ({ containers: await queries.list(req, ctx.requestId) }),
      remove: async (req, ctx) => {
        await lifecycle.remove(req, ctx.requestId);
        return {};
      },
      stop: async (req) => {
        await lifecycle.stop(req);
        return {};
      },
      kill: async (req) => {
        await lifecycle.kill(req);
        return {};
      },
      resize: async (req) => {
        await this.parts.attachments.resize(req);
        return {};
      },
      restart: async (req, ctx) => {
        await lifecycle.restart(req, ctx.requestId);
        return {};
      },
      pause: async (req) => {
        await lifecycle.pause(req.id, true);
        return {};
      },
      unpause: async (req) => {
        await lifecycle.pause(req.id, false);
        return {};
      },
      top: async (req) => {
        const r = await queries.top(req.id, req.psArgs);
        return { titles: r.titles, processes: r.processes.map((fields) => ({ fields })) };
      },
      changes: async (req, ctx) => ({ changes: await queries.changes(req.id, ctx.requestId) }),
      export: async (req, call, ctx) => {
        // Walked by name like a copy: frozen like one.
        await copies.copying(req.id, ctx.requestId, ctx.signal, async (rootfs, row, signal) => {
          await sendBytes(rootfsTar(rootfs), call, (data) => ({ data }), signal);
          copies.exported(row);
        });
      },
      removeLink: async (req) => {
        lifecycle.removeLink(req.name);
        return {};
      },
      // Copies in and out of a running container run with it frozen (copies.copying says why).
      statPath: async (req, ctx) => copies.copying(req.id, ctx.requestId, ctx.signal, async (rootfs) => statPath(rootfs, req.path)),
      getArchive: async (req, call, ctx) => {
        if (!req.path) throw refused('Path cannot be empty');
        await copies.copying(req.id, ctx.requestId, ctx.signal, async (rootfs, _row, signal) => {
          let tar: Readable;
          try {
            tar = pathTar(rootfs, req.path);
          } catch (err) {
            if (req.legacyCopy && asStevedoreError(err).kind === 'notFound') throw refused(`Could not find the file ${req.path} in container ${req.id}`);
            throw err;
          }
          // A client gone mid-stream ends the copy (a cancelled call never drains), and with it the freeze.
          await sendBytes(tar, call, (data) => ({ data }), signal);
        });
      },
      putArchive: async (call, ctx) => {
        const { header, bytes } = await headerThenBytes(call, (r) => (r.part?.$case === 'chunk' ? Buffer.from(r.part.chunk) : undefined));
        if (header.part?.$case !== 'target') throw refused('PutArchive must start with its target');
        const target = header.part.target;
        await copies.copying(target.id, ctx.requestId, ctx.signal, (rootfs, _row, signal) => {
          const stop = () => bytes.destroy(signal.reason as Error);
          if (signal.aborted) stop();
          else signal.addEventListener('abort', stop, { once: true });
          return extractInto(rootfs, target.path, bytes, target.makePath);
        });
        return {};
      },
      diff: async (req, call, ctx) => {
        const row = queries.resolve(req.id);
        // A commit of a running container reads its writable layer by name: frozen, as a copy is.
        await freezer.whileFrozen(row, () => sendBytes(diffTar(paths.dir(row.id)), call, (data) => ({ data }), ctx.signal));
      },
      logs: async (req, call, ctx) => {
        const row = queries.resolve(req.id);
        await logs.stream(row.id, req, (o) => writeWithBackpressure(call, o, ctx.signal), ctx.signal);
      },
      attach: (call, ctx) => this.attach(call, ctx.signal),
      execCreate: async (req) => ({ id: this.parts.execs.create(req) }),
      execStart: async (req) => {
        await this.parts.execs.start(req.id);
        return {};
      },
      execResize: async (req) => {
        await this.parts.execs.resize(req);
        return {};
      },
      execInspect: async (req) => this.parts.execs.inspect(req.id),
      stats: async (req, call, ctx) => {
        const id = queries.resolve(req.id).id;
        const current = () => {
          const row = queries.byId(id);
          return row && { id: row.id, name: row.name, running: row.status === 'running', pid: row.pid };
        };
        await streamStats(current, req.stream, async (sample) => {
          await writeWithBackpressure(call, { json: JSON.stringify(sample) }, ctx.signal);
        }, ctx.signal);
      },
    };
  }

  /**
   * Relays one attachment between the API edge and the container's monitor,
   * at the pace of the slower side: output is read from the monitor while
   * the call takes it (the monitor drops an attachment that falls too far
   * behind), stdin is read from the call while the monitor takes it (which
   * holds the edge, and so its client, back through gRPC flow control).
   */
  private attach(call: grpc.ServerDuplexStream<containers.AttachRequest, containers.AttachReply>, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      let attachment: Attachment | undefined;
      let id = '';
      let ended = false;
      /** Until the monitor has what was pending, stdin is held here (up to PENDING_STDIN_BYTES). */
      let connected = false;
      let pendingBytes = 0;
      let outputHeld = false;
      /** The edge's answer to a monitor handed to it, awaited by the attachment's connection. */
      let monitorAnswer: ((subscribed: boolean) => void) | undefined;
      /** Why the call is not read: while any reason holds, stdin waits in gRPC. */
      const holds = new Set<'opening' | 'pending' | 'monitor'>();
      const hold = (why: 'opening' | 'pending' | 'monitor') => {
        holds.add(why);
        call.pause();
      };
      const release = (why: 'opening' | 'pending' | 'monitor') => {
        if (holds.delete(why) && holds.size === 0 && !ended) call.resume();
      };
      /** Resumes reading stdin once the monitor's socket has taken what was sent. */
      const untilMonitorDrains = (conn: ShimConnection) => {
        if (!conn.socket.writableNeedDrain || holds.has('monitor')) return;
        hold('monitor');
        conn.socket.once('drain', () => release('monitor'));
      };
      const end = () => {
        if (ended) return;
        ended = true;
        monitorAnswer?.(false);
        if (attachment) attachments.detach(id, attachment);
        resolve();
      };
      const { attachments, logs, queries, execs } = this.parts;
      signal.addEventListener('abort', end, { once: true });
      call.on('data', (req: containers.AttachRequest) => {
        const part = req.part;
        if (!part) return;
        if (part.$case === 'open') {
          // Stdin sent with the open waits in gRPC until the attachment exists.
          hold('opening');
          void (async () => {
            const o = part.open;
            let tty: boolean;
            let openStdin: boolean;
            if (o.exec) {
              // An exec's streams: its record says what it has.
              const exec = execs.inspect(o.id);
              tty = Boolean(exec.config?.tty);
              openStdin = Boolean(exec.config?.attachStdin);
              call.write({ part: { $case: 'tty', tty } });
            } else {
              const row = queries.resolve(o.id);
              id = row.id;
              const config = JSON.parse(row.config) as ContainerConfig;
              tty = Boolean(config.Tty);
              openStdin = Boolean(config.OpenStdin);
              call.write({ part: { $case: 'tty', tty } });
              call.write({ part: { $case: 'startedAt', startedAt: row.started_at } });
              // A resumed attachment whose container ran and stopped while the runtime was away has nothing left to wait for.
              if (o.resume && row.status !== 'running' && row.started_at !== o.resumeAfter) return end();
              if (o.logs) {
                await logs.stream(row.id, { stdout: o.stdout, stderr: o.stderr, timestamps: false, follow: false }, (out) => writeWithBackpressure(call, { part: { $case: 'output', output: out } }, signal), signal);
              }
              if (!o.stream) return end();
            }
            attachment = {
              wantStdout: o.stdout,
              wantStderr: o.stderr,
              wantStdin: o.stdin && openStdin,
              pendingStdin: [],
              stdinClosed: false,
              onOutput: (stream, data) => {
                if (call.write({ part: { $case: 'output', output: { stream, data } } }) || outputHeld) return;
                // The monitor is read again once the edge has taken this; meanwhile its backlog for us grows.
                const socket = attachment?.connection?.socket;
                outputHeld = true;
                socket?.pause();
                call.once('drain', () => {
                  outputHeld = false;
                  socket?.resume();
                });
              },
              onConnected: () => {
                connected = true;
                call.write({ part: { $case: 'connected', connected: true } });
                pendingBytes = 0;
                if (attachment?.connection) untilMonitorDrains(attachment.connection);
                release('pending');
              },
              onEnd: end,
            };
            // Output only (stdin goes through here, and the call is not read while stdin is held): an edge beside this
            // runtime reads the output from the monitor itself, one copy and one process less for every byte.
            if (this.parts.directRoot && o.directRoot === this.parts.directRoot && !attachment.wantStdin) {
              attachment.directOutput = (monitor) => new Promise<boolean>((answer) => {
                if (ended) return answer(false);
                monitorAnswer = answer;
                call.write({ part: { $case: 'monitor', monitor } });
              });
            }
            release('opening');
            if (o.exec && o.resume) {
              if (!(await execs.reattach(o.id, attachment))) end();
            } else if (o.exec) {
              await execs.startAttached(o.id, attachment);
            } else if ((await attachments.attach(id, attachment)) === 'not-running') {
              end();
            }
          })().catch((err) => {
            ended = true;
            reject(err);
          });
        } else if (part.$case === 'stdin' && attachment?.wantStdin) {
          const chunk = Buffer.from(part.stdin);
          if (connected && attachment.connection) {
            attachment.connection.send(Frame.stdin, chunk);
            untilMonitorDrains(attachment.connection);
            return;
          }
          // Before the container starts (docker run attaches first), a bounded amount waits here.
          attachment.pendingStdin.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= PENDING_STDIN_BYTES) hold('pending');
        } else if (part.$case === 'monitorSubscribed') {
          const answer = monitorAnswer;
          monitorAnswer = undefined;
          answer?.(part.monitorSubscribed);
        } else if (part.$case === 'stdinClosed' && attachment) {
          if (!attachment.wantStdin) return;
          if (connected && attachment.connection) attachment.connection.send(Frame.stdinClosed);
          else attachment.stdinClosed = true;
        }
      });
      call.on('end', () => {
        if (!attachment) end();
      });
      call.on('error', end);
    });
  }
}
