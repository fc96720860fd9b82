// The container routes.
import { containerConfigText, hostConfigText } from '@stevedore/contracts';
import type { Socket } from 'node:net';
import { Inject, Injectable } from '@nestjs/common';
import type { containers } from '@stevedore/contracts';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';
import { invalid, notFound, refused, StevedoreError } from '@stevedore/errors';
import type { StevedoreConfig } from '@stevedore/config';
import { isUnavailable } from '@stevedore/service-kit';
import { CONFIG } from '../nest-context';
import type { ApiRequest } from '../http/api-request';
import type { ApiResponse } from '../http/api-response';
import { ContainerRouter, type Routed } from '../backends/container-router';
import { listAcrossNodes, nodeObject, onNode, placeContainer } from './cluster-containers';
import { RemovalsInFlight } from '../backends/removals-in-flight';
import { streamBytes } from '../http/byte-stream';
import { relayStream } from '../http/relay';
import { pumpBody } from '../http/upload';
import { acceptWebSocket } from '../http/websocket';
import { AttachOutput, attachBacklog } from '../http/attach-output';
import { muxFrame, muxHeader, relayHijacked } from './hijacked-stream';
import { directOutput, RuntimeAttachment, type AttachTarget } from './runtime-attachment';
import { toContainerInspectV1_0, toContainerInspectV1_12, toContainerListV1_0, toContainerListV1_5 } from './container-shapes';

const SERVICE = 'container-runtime';

/** How long a start whose runtime went away is made again while the runtime has no record of it. */
const START_RETRY_WITHIN_MS = 60_000;

@Injectable()
export class ContainersHandlers {
  constructor(
    private readonly router: ContainerRouter,
    private readonly removals: RemovalsInFlight,
    @Inject(CONFIG) private readonly config: StevedoreConfig,
  ) {}

  /** What an attach request asks of the runtime. */
  private attachTarget(req: ApiRequest, c: containers.Container, routed: Routed): AttachTarget {
    return { id: c.id, logs: req.bool('logs'), stream: req.bool('stream'), stdin: req.bool('stdin'), stdout: req.bool('stdout'), stderr: req.bool('stderr'), startedAt: c.state?.startedAt ?? '', ...directOutput(this.config, routed) };
  }

  /** The runtime a container's request goes to (its node's, in a cluster), and the reference to give it. */
  private at(req: ApiRequest, ref = req.params.id): Promise<Routed> {
    return this.router.of(ref);
  }

  private async inspectOf(req: ApiRequest, ref: string): Promise<Routed & { c: containers.Container }> {
    const routed = await this.at(req, ref);
    return { ...routed, c: await routed.rt.inspect({ id: routed.ref }, { requestId: req.requestId }) };
  }

  create = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const body = await req.json<ContainerConfig & { HostConfig?: HostConfig }>();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('The container config must be a JSON object');
    const { HostConfig: hostConfig, ...config } = body as ContainerConfig & { HostConfig?: HostConfig; [k: string]: unknown };
    // Fields of later APIs that Docker 1.0 never read are dropped here.
    for (const k of ['Labels', 'NetworkingConfig', 'StopSignal', 'Healthcheck', 'Shell', 'ArgsEscaped', 'MacAddress', 'StopTimeout'] as const) delete (config as Record<string, unknown>)[k];
    if (typeof config.Cmd === 'string') config.Cmd = [config.Cmd];
    if (typeof config.Entrypoint === 'string') config.Entrypoint = [config.Entrypoint];
    const rt = await placeContainer(this.router, this.config, config, hostConfig ?? undefined, req.requestId);
    const r = await rt.create({ name: req.string('name'), configJson: containerConfigText.encode(config), hostConfigJson: hostConfigText.encode(hostConfig ?? undefined) }, { requestId: req.requestId, timeoutMs: 60_000 });
    res.json(201, { Id: r.id, Warnings: r.warnings.length ? r.warnings : null });
  };

  /**
   * Docker 1.0 read a start body only with a JSON content type: an empty one
   * failed its decoder (500 `EOF`), and one that decodes to nothing (`{}`,
   * `null`) sets nothing, so the saved host config stays.
   */
  start = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    let hostConfigJson = '';
    if (/^application\/json\b/.test(req.header('content-type') ?? '')) {
      const text = await req.text();
      if (!text.trim()) throw refused('EOF');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw invalid(`Request body is not valid JSON: ${(err as Error).message}`);
      }
      if (parsed !== null && (typeof parsed !== 'object' || Object.keys(parsed).length > 0)) hostConfigJson = text;
    } else req.raw.resume();
    const asked = Date.now();
    // The runtime may end with the start in flight (killed, restarting). Back again, it has adopted the
    // container (running) or recorded the start as failed (exited, `die` published: what `docker run --rm`
    // waits for); a start it never heard of leaves the record as it was, and is made again.
    const { rt, ref } = await this.at(req);
    for (;;) {
      try {
        await rt.start({ id: ref, hostConfigJson }, { requestId: req.requestId, timeoutMs: 120_000 });
        break;
      } catch (err) {
        if (!isUnavailable(err) || Date.now() - asked > START_RETRY_WITHIN_MS) throw err;
        const state = await rt.inspect({ id: ref }, { requestId: req.requestId }).then(
          (c) => c.state,
          (e) => {
            if (isUnavailable(e)) return undefined;
            throw e;
          },
        );
        if (state?.running) break;
        if (state?.finishedAt && Date.parse(state.finishedAt) >= asked) throw err;
      }
    }
    res.noContent(204);
  };

  wait = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    // No deadline: a wait lasts as long as the container runs (or the client stays).
    const r = await rt.wait({ id: ref }, { requestId: req.requestId, timeoutMs: 0, signal: req.signal });
    res.json(200, { StatusCode: r.statusCode });
  };

  inspect = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { c: found, node } = await this.inspectOf(req, req.params.id);
    const c = node ? onNode(found, node) : found;
    // In a cluster, where Docker Swarm (classic) showed it: the container's node.
    const withNode = <T extends object>(shape: T) => (node ? { ...shape, Node: nodeObject(node) } : shape);
    // Before v1.12 the stored structure, serialised directly: no newline after it.
    if (req.below('1.12')) res.json(200, withNode(toContainerInspectV1_0(c)), {}, false);
    else res.json(200, withNode(toContainerInspectV1_12(c)));
  };

  list = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const size = req.bool('size');
    const listed = await listAcrossNodes(this.router, req.requestId, { all: req.bool('all'), limit: req.int('limit'), since: req.string('since'), before: req.string('before'), size, sinceCreated: '', beforeCreated: '' });
    res.list(
      200,
      listed.containers.map((c) => {
        const entry = req.below('1.5') ? toContainerListV1_0(c, size) : toContainerListV1_5(c, size);
        return listed.onDownNodes.has(c.id) ? { ...entry, Status: 'Host Down' } : entry;
      }),
    );
  };

  /** DELETE /containers/(id); with `link=1` the path names a link (`parent/alias`) and only that name goes. */
  remove = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { name } = req.params;
    if (req.bool('link')) {
      // A link is the parent's name: `parent/alias` goes to the parent's node.
      const { rt } = await this.at(req, name.replace(/^\/+/, '').split('/')[0]);
      await rt.removeLink({ name }, { requestId: req.requestId });
      return res.noContent(204);
    }
    if (name.includes('/')) throw notFound(`No such container: ${name}`);
    // `destroy` events wait for this answer (see RemovalsInFlight).
    this.removals.track(new Promise((answered) => res.raw.once('finish', answered).once('close', answered)));
    const { rt, ref } = await this.at(req, name);
    await rt.remove({ id: ref, force: req.bool('force'), volumes: req.bool('v') }, { requestId: req.requestId, timeoutMs: 60_000 });
    res.noContent(204);
  };

  stop = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    // Docker 1.0 read a missing `t` as 0; its CLI always sent 10, the default here.
    await rt.stop({ id: ref, timeout: req.int('t', 10) }, { requestId: req.requestId, timeoutMs: 120_000 });
    res.noContent(204);
  };

  restart = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    await rt.restart({ id: ref, timeout: req.int('t', 10) }, { requestId: req.requestId, timeoutMs: 120_000 });
    res.noContent(204);
  };

  pause = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    await rt.pause({ id: ref }, { requestId: req.requestId });
    res.noContent(204);
  };

  unpause = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    await rt.unpause({ id: ref }, { requestId: req.requestId });
    res.noContent(204);
  };

  top = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    const r = await rt.top({ id: ref, psArgs: req.string('ps_args') }, { requestId: req.requestId });
    res.json(200, { Processes: r.processes.map((p) => p.fields), Titles: r.titles });
  };

  changes = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    const r = await rt.changes({ id: ref }, { requestId: req.requestId, timeoutMs: 60_000 });
    res.list(200, r.changes.map((c) => ({ Kind: c.kind, Path: c.path })));
  };

  export = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    await streamBytes(req, res, rt.export({ id: ref }, { requestId: req.requestId }), SERVICE, 'application/octet-stream');
  };

  /** POST /containers/(id)/copy (v1.4): a JSON body `{Resource}` is required, as Docker 1.0 required it. */
  copy = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const type = req.header('content-type') ?? '';
    if (!/^application\/json\b/.test(type)) throw refused(`Content-Type not supported: ${type}`);
    const body = await req.json<{ Resource?: string }>();
    if (!body?.Resource) throw refused('Path cannot be empty');
    try {
      const { rt, ref } = await this.at(req);
      await streamBytes(req, res, rt.getArchive({ id: ref, path: body.Resource, makePath: false, legacyCopy: true }, { requestId: req.requestId }), SERVICE, 'application/octet-stream');
    } catch (err) {
      // Docker 1.0 answered an unknown container here with a bare 404.
      if (err instanceof StevedoreError && err.kind === 'notFound' && !res.started) return res.noContent(404);
      throw err;
    }
  };

  private async statHeader(req: ApiRequest): Promise<string> {
    const path = req.string('path');
    if (!path) throw invalid('Path cannot be empty');
    const { rt, ref } = await this.at(req);
    const st = await rt.statPath({ id: ref, path, makePath: false, legacyCopy: false }, { requestId: req.requestId, timeoutMs: 60_000 });
    return Buffer.from(JSON.stringify({ name: st.name, size: st.size, mode: st.mode, mtime: st.mtime, linkTarget: st.linkTarget })).toString('base64');
  }

  /** HEAD /containers/(id)/archive (v1.20; today's `docker cp` needs it). */
  archiveHead = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const stat = await this.statHeader(req);
    res.raw.writeHead(200, { 'X-Docker-Container-Path-Stat': stat });
    res.raw.end();
  };

  /** GET /containers/(id)/archive (v1.20; today's `docker cp` needs it). */
  archiveGet = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const stat = await this.statHeader(req);
    res.raw.setHeader('X-Docker-Container-Path-Stat', stat);
    const { rt, ref } = await this.at(req);
    await streamBytes(req, res, rt.getArchive({ id: ref, path: req.string('path'), makePath: false, legacyCopy: false }, { requestId: req.requestId }), SERVICE, 'application/x-tar');
  };

  /** PUT /containers/(id)/archive (v1.20): a tar extracted into a directory of the container. */
  archivePut = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const path = req.string('path');
    if (!path) throw invalid('Path cannot be empty');
    const { rt, ref } = await this.at(req);
    const upload = rt.putArchive({ requestId: req.requestId });
    upload.stream.write({ part: { $case: 'target', target: { id: ref, path, makePath: false, legacyCopy: false } } });
    pumpBody(req, upload.stream, (chunk) => ({ part: { $case: 'chunk' as const, chunk } }));
    await upload.response;
    res.noContent(200);
  };

  kill = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    await rt.kill({ id: ref, signal: req.string('signal') }, { requestId: req.requestId, timeoutMs: 60_000 });
    res.noContent(204);
  };

  resize = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { rt, ref } = await this.at(req);
    await rt.resize({ id: ref, height: req.int('h'), width: req.int('w') }, { requestId: req.requestId });
    res.noContent(200);
  };

  logs = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { c, rt } = await this.inspectOf(req, req.params.id);
    const tty = Boolean(containerConfigText.decode(c.configJson)?.Tty);
    const multiplex = req.atLeast('1.6') && !tty; // gate G10
    const stdout = req.bool('stdout');
    const stderr = req.bool('stderr');
    // Docker 1.0 set no content type; Go's sniffing named frames octet-stream, text plain text.
    res.startStream(200, multiplex ? 'application/octet-stream' : 'text/plain; charset=utf-8');
    if (!stdout && !stderr) {
      const text = Buffer.from('Error running logs job: You must choose at least one stream');
      await res.write(multiplex ? muxFrame(1, text) : text);
      return res.end();
    }
    const stream = rt.logs({ id: c.id, stdout, stderr, timestamps: req.bool('timestamps'), follow: req.bool('follow') }, { requestId: req.requestId });
    // The answer has started: a failure ends it.
    await relayStream(req, res, stream, {
      service: SERVICE,
      start: () => undefined,
      render: (o) => (multiplex ? [muxHeader(o.stream, o.data.byteLength), o.data] : Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength)),
      lateFailure: () => undefined,
    });
  };

  /**
   * GET /containers/(id)/stats (today's CLI: docker stats): a JSON sample a
   * second while the container runs (`stream`, the default), or one; each
   * sample its own chunk.
   */
  stats = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { c, rt } = await this.inspectOf(req, req.params.id);
    const call = rt.stats({ id: c.id, stream: req.bool('stream', true) }, { requestId: req.requestId });
    await relayStream(req, res, call, {
      service: SERVICE,
      start: () => res.started || res.startStream(200, 'application/json'),
      render: (r) => `${r.json}\n`,
      lateFailure: () => undefined,
    });
  };

  /**
   * GET /containers/(id)/attach/ws: WebSocket attach. Refused (403) without
   * an Origin header, as Docker's WebSocket library refused it; output as
   * text frames, never multiplexed, whatever the version.
   */
  attachWebSocket = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const routed = await this.inspectOf(req, req.params.id);
    const { c, rt } = routed;
    const key = req.header('sec-websocket-key');
    if (!req.hijack || !key || (req.header('upgrade') ?? '').toLowerCase() !== 'websocket') return res.text(400, 'Bad Request: a WebSocket handshake was expected\n');
    if (!req.header('origin')) return res.text(403, 'Forbidden: the WebSocket handshake needs an Origin header\n');
    res.raw.detachSocket(req.hijack.socket as Socket);
    const peer = await acceptWebSocket(req.raw, req.hijack.socket, req.hijack.head);
    if (!peer) return;
    const attachment = new RuntimeAttachment(rt, this.attachTarget(req, c, routed), req.requestId, req.log, (stream, data) => output.send(stream, data));
    const done = attachment.run();
    // Stdin waits while the runtime has not taken the last message.
    peer.ws.on('message', (data: Buffer) => {
      if (!req.bool('stdin')) return;
      if (!attachment.sendStdin(data)) {
        peer.ws.pause();
        attachment.whenDrained(() => peer.ws.resume());
      }
    });
    peer.ws.on('close', () => attachment.cancel());
    peer.ws.on('error', () => attachment.cancel());
    const output = new AttachOutput(req.hijack.socket, {
      ...attachBacklog(this.config),
      write: (_stream, data) => peer.sendText(data),
      notice: (text) => peer.sendText(text),
      end: () => peer.ws.close(1000),
      onCut: (queued) => {
        req.log.warn({ queued }, 'attach client cut off: it fell behind the container\'s output');
        attachment.cancel();
      },
    });
    await done;
    if (peer.ws.readyState === peer.ws.OPEN) output.finish();
  };

  /**
   * POST /containers/(id)/attach: the connection is taken over. With an
   * Upgrade header (today's clients insist) the answer is 101; otherwise
   * Docker 1.0's 200. Output is multiplexed from v1.6 for a container
   * without a TTY (gate G10).
   */
  attach = async (req: ApiRequest, _res: ApiResponse): Promise<void> => {
    const routed = await this.inspectOf(req, req.params.id);
    const { c, rt } = routed;
    const tty = Boolean(containerConfigText.decode(c.configJson)?.Tty);
    await relayHijacked(req, {
      rt, target: this.attachTarget(req, c, routed), multiplex: req.atLeast('1.6') && !tty, backlog: attachBacklog(this.config),
      failureText: (message) => `Error attaching: ${message}\n`,
    });
  };
}

