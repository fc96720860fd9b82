// POST /build: the context streams into the build's Redis context stream
// (and, past CONTEXT_INLINE_BYTES, into the image store's blob store), the
// build goes on the queue, and the output the worker appends to the build's
// Redis stream is forwarded in the request's version's format (gate G6: JSON
// from v1.8, text before). A failure before any output is a plain HTTP 500,
// as Docker 1.0 answered a context without a Dockerfile; the client going
// away cancels the build.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { StevedoreConfig } from '@stevedore/config';
import type { images } from '@stevedore/contracts';
import { appendOutput, BuildKeys, BuildQueues, cancelBuild, ContextSink, deleteContextStream, NoNodeForBuild, queueConnection, readOutput, type BuildJob, type OutputEntry } from '@stevedore/builds';
import { takeFilters } from '@stevedore/cluster';
import { jsonMessage, textMessage, type ProgressMessage } from '@stevedore/docker-api';
import { BlockingConnections, connectRedis, type Redis } from '@stevedore/redis';
import { gatherChunks } from '@stevedore/service-kit';
import { CONFIG } from '../nest-context';
import { asStevedoreError, refused, StevedoreError } from '@stevedore/errors';
import type { ApiRequest } from '../http/api-request';
import type { ApiResponse } from '../http/api-response';
import { authConfig, registryAuth } from '../http/registry-auth';
import type { AuthConfigJson } from '@stevedore/docker-api';
import { Backends } from '../backends/backends';

/** Gate G7: the effective rm and forcerm of a request. */
export function removalRules(req: Pick<ApiRequest, 'atLeast' | 'bool'> & { query: URLSearchParams }): { rm: boolean; forcerm: boolean } {
  const forcerm = req.bool('forcerm');
  if (!req.atLeast('1.12')) return { rm: req.bool('rm'), forcerm };
  const rm = req.query.get('rm');
  return { rm: !rm || req.bool('rm') || req.query.get('forcerm') === '1', forcerm };
}

/**
 * The credentials for FROM's pulls: `X-Registry-Config` (v1.9; Docker 1.0's
 * `{"configs":{…}}` or today's bare map), else for v < 1.9 `X-Registry-Auth`
 * under the key '' (any registry) — gate G5.
 */
export function registryConfig(req: Pick<ApiRequest, 'header' | 'atLeast'>): Record<string, images.AuthConfig> {
  const out: Record<string, images.AuthConfig> = {};
  const header = req.header('x-registry-config');
  if (header) {
    try {
      const parsed = JSON.parse(Buffer.from(header.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8')) as Record<string, unknown>;
      const configs = (parsed && typeof parsed.configs === 'object' ? parsed.configs : parsed) as Record<string, AuthConfigJson>;
      for (const [registry, auth] of Object.entries(configs ?? {})) if (auth && typeof auth === 'object') out[registry] = authConfig(auth);
    } catch {
      // unreadable: no credentials, as Docker 1.0 went on
    }
  }
  if (Object.keys(out).length === 0 && !req.atLeast('1.9') && req.header('x-registry-auth')) out[''] = registryAuth(req);
  return out;
}

/**
 * Where a build may run: the `constraint:` build arguments (Swarm classic
 * took a container's from its environment: `--build-arg
 * constraint:storage==ssd` comes as the key `constraint:storage` and the
 * value `=ssd`), and `platform`. Other build arguments are ignored, as
 * Docker 1.0 had none.
 */
export function buildPlacement(req: Pick<ApiRequest, 'string'>): { constraints: string[]; platform: string } {
  let args: Record<string, unknown> = {};
  const raw = req.string('buildargs');
  if (raw) {
    try {
      args = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw refused('buildargs is not a JSON object');
    }
    if (!args || typeof args !== 'object' || Array.isArray(args)) throw refused('buildargs is not a JSON object');
  }
  const constraints = Object.entries(args)
    .filter(([key]) => key.startsWith('constraint:'))
    .map(([key, value]) => `${key.slice('constraint:'.length)}=${typeof value === 'string' ? value : ''}`);
  try {
    takeFilters(constraints.map((c) => `constraint:${c}`));
  } catch (err) {
    throw refused((err as Error).message);
  }
  const platform = req.string('platform');
  if (platform && !/^[a-z0-9_]{1,32}(\/[a-z0-9_]{1,32}){0,2}$/i.test(platform)) throw refused(`invalid platform ${JSON.stringify(platform.slice(0, 100))}: expected os[/arch[/variant]]`);
  return { constraints, platform };
}

/** One entry of a build's output in the format of the request's version (gate G6). */
function renderEntry(entry: OutputEntry, json: boolean): string {
  const render = (m: ProgressMessage) => (json ? jsonMessage(m) : textMessage(m));
  switch (entry.kind) {
    case 'out':
      return render({ stream: entry.text });
    case 'err':
      return render({ stream: `\u001b[91m${entry.text}\u001b[0m` });
    case 'raw':
      // A pull's progress message, already JSON; text clients get its status.
      return json ? `${entry.text}\r\n` : textMessage(JSON.parse(entry.text) as ProgressMessage);
    case 'error':
      return render({ error: entry.text, errorCode: entry.code });
    default:
      return '';
  }
}

@Injectable()
export class BuildHandlers implements OnApplicationShutdown {
  private readonly keys: BuildKeys;
  private readonly redis: Redis;
  private readonly queueRedis: Redis;
  private readonly queues: BuildQueues;
  /** Connections for reading outputs (each read blocks its connection). */
  private readonly readers: BlockingConnections;

  constructor(
    @Inject(CONFIG) private readonly config: StevedoreConfig,
    private readonly backends: Backends,
  ) {
    this.keys = new BuildKeys(config.redisPrefix);
    this.redis = connectRedis(config.redisUrl);
    this.queueRedis = queueConnection(config.redisUrl);
    this.queues = new BuildQueues(this.queueRedis, this.redis, this.keys);
    this.readers = new BlockingConnections(config.redisUrl);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
    this.queueRedis.disconnect();
    this.redis.disconnect();
    this.readers.close();
  }

  /**
   * The request body as the build's context: into its Redis context stream
   * while it fits, the rest into the blob store, then the stream's end
   * (naming the blob) or its failure; resolves with the blob's ID ('' when
   * all of it fitted).
   */
  private async storeContext(req: ApiRequest, sink: ContextSink): Promise<string> {
    let upload: ReturnType<Backends['images']['putBlob']> | undefined;
    try {
      for await (const chunk of gatherChunks(req.raw as AsyncIterable<Buffer>)) {
        if (!upload && (await sink.take(chunk))) continue;
        if (!upload) {
          upload = this.backends.images.putBlob({ requestId: req.requestId });
          upload.response.catch(() => undefined); // awaited below; a failure before that is the loop's
        }
        if (!upload.stream.write({ data: chunk })) await once(upload.stream, 'drain');
      }
      upload?.stream.end();
      const blob = upload ? (await upload.response).id : '';
      await sink.finish(blob);
      return blob;
    } catch (err) {
      upload?.stream.cancel();
      await sink.fail(`The build context could not be received: ${asStevedoreError(err).message}`).catch(() => undefined);
      throw err;
    }
  }

  build = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const t0 = Date.now();
    const remote = req.atLeast('1.2') ? req.string('remote') : '';
    const { rm, forcerm } = removalRules(req);
    const job: BuildJob = {
      buildId: randomBytes(16).toString('hex'),
      remote,
      tag: req.string('t'),
      quiet: req.bool('q'),
      nocache: req.bool('nocache'),
      rm,
      forcerm,
      heldCredentials: '',
      requestId: req.requestId,
      ...buildPlacement(req),
    };
    const { buildId } = job;
    // The credentials stay in the image store's memory for the build, never in the job (Redis).
    const configs = registryConfig(req);
    if (Object.keys(configs).length > 0) {
      await this.backends.images.holdCredentials({ ref: buildId, configs }, { requestId: req.requestId });
      job.heldCredentials = buildId;
    }
    const json = req.atLeast('1.8');
    // Queued before the context is in: the worker that takes the job reads the context as it arrives.
    await this.queues.add(job).catch(async (err) => {
      if (job.heldCredentials) await this.backends.images.releaseCredentials({ ref: buildId }, { requestId: req.requestId }).catch(() => undefined);
      throw err instanceof NoNodeForBuild ? refused(err.message) : err;
    });
    const t1 = Date.now();
    let contextBlob = '';
    try {
      if (!remote) contextBlob = await this.storeContext(req, new ContextSink(this.redis, this.keys, buildId));
      req.log.debug({ queueMs: t1 - t0, storeMs: Date.now() - t1 }, 'build queued, context stored');
      await this.readers.use(async (reader) => {
        for await (const batch of readOutput(reader, this.keys, buildId, req.signal)) {
          if (batch[0].kind === 'error' && !res.started) throw new StevedoreError('refused', batch[0].text);
          if (!res.started) res.startStream(200, json ? 'application/json' : undefined);
          // One message per write, so one per HTTP chunk, as Docker 1.0 flushed them (docker-py 0.5 reads one line per chunk).
          for (const entry of batch) {
            const text = renderEntry(entry, json);
            if (text) await res.write(text);
          }
        }
      });
      if (req.signal.aborted) {
        await cancelBuild(this.redis, this.keys, buildId);
        req.log.info({ build: buildId }, 'the client went away: build cancelled');
      }
    } catch (err) {
      // Not the build's own error: the body or the output could not be read (Redis gone); the build is cancelled.
      if (!(err instanceof StevedoreError)) {
        await cancelBuild(this.redis, this.keys, buildId).catch(() => undefined);
        await appendOutput(this.redis, this.keys, buildId, { kind: 'error', text: String(err) }).catch(() => undefined);
      }
      throw err;
    } finally {
      if (job.heldCredentials) this.backends.images.releaseCredentials({ ref: buildId }, { requestId: req.requestId }).catch(() => undefined);
      // The worker deletes the context when it is done; a worker that died cannot, the edge that stored it can.
      if (!remote) void deleteContextStream(this.redis, this.keys, buildId).catch(() => undefined);
      // Before the answer ends: the blob is kept while the build may run again (a node died), and goes with it.
      if (contextBlob) await this.backends.images.deleteBlob({ id: contextBlob }, { requestId: req.requestId }).catch(() => undefined);
    }
    res.end();
  };
}
