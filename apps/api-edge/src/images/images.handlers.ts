// The image routes: list, inspect, history, tag, delete, viz, search,
// push, commit, save and load, and POST /images/create (pull and import).
import { Injectable } from '@nestjs/common';
import type { images } from '@stevedore/contracts';
import { notFound, refused } from '@stevedore/errors';
import { commitContainer } from '@stevedore/service-kit';
import type { ApiRequest } from '../http/api-request';
import type { ApiResponse } from '../http/api-response';
import { streamProgress } from '../http/progress-stream';
import { streamBytes } from '../http/byte-stream';
import { pumpBody } from '../http/upload';
import { authConfig, registryAuth } from '../http/registry-auth';
import type { AuthConfigJson } from '@stevedore/docker-api';
import { Backends } from '../backends/backends';
import { ContainerRouter } from '../backends/container-router';
import { toDeleteItem, toHistoryEntry, toImageInspectV1_0, toImageInspectV1_12, toImageListV1_0, toImageListV1_7, toImageViz } from './image-shapes';

const SERVICE = 'image-store';

@Injectable()
export class ImagesHandlers {
  constructor(
    private readonly backends: Backends,
    private readonly router: ContainerRouter,
  ) {}

  private get store() {
    return this.backends.images;
  }

  private listImages(req: ApiRequest, request: Partial<images.ListImagesRequest>) {
    return this.store.list({ all: false, repoGlob: '', danglingOnly: false, ...request }, { requestId: req.requestId });
  }

  list = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const filters = req.jsonParam<Record<string, unknown>>('filters');
    let danglingOnly = false;
    if (filters !== undefined) {
      if (typeof filters !== 'object' || filters === null || Array.isArray(filters)) throw refused('Invalid filters: a JSON object was expected');
      const dangling = filters.dangling;
      const values = Array.isArray(dangling) ? dangling.map(String) : dangling && typeof dangling === 'object' ? Object.keys(dangling) : [];
      danglingOnly = values.some((v) => v.toLowerCase() === 'true' || v === '1');
    }
    const { images: list } = await this.listImages(req, { all: req.bool('all'), repoGlob: req.string('filter'), danglingOnly });
    // Below v1.7 Docker 1.0 encoded its own list (one newline at the end); from v1.7 it wrote the engine's table.
    if (req.below('1.7')) res.json(200, list.flatMap(toImageListV1_0));
    else res.list(200, list.map(toImageListV1_7));
  };

  viz = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const { images: list } = await this.listImages(req, { all: true });
    res.text(200, toImageViz(list));
  };

  inspect = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const r = await this.store.inspect({ name: req.params.name }, { requestId: req.requestId });
    // Before v1.12 the stored metadata, serialised directly: no newline after it.
    if (req.below('1.12')) res.json(200, toImageInspectV1_0(r), {}, false);
    else res.json(200, toImageInspectV1_12(r));
  };

  history = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const r = await this.store.history({ name: req.params.name }, { requestId: req.requestId });
    res.list(200, r.entries.map(toHistoryEntry));
  };

  tag = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    await this.store.tag({ name: req.params.name, repo: req.string('repo'), tag: req.string('tag'), force: req.bool('force') }, { requestId: req.requestId });
    res.noContent(201);
  };

  remove = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const r = await this.store.delete({ name: req.params.name, force: req.bool('force'), noprune: req.bool('noprune') }, { requestId: req.requestId });
    res.list(200, r.items.map(toDeleteItem));
  };

  /**
   * POST /images/(name)/push: credentials from X-Registry-Auth, else (v1.2 -
   * v1.4 clients) the body's AuthConfig; with neither, Docker 1.0's decoder
   * failed: 500 `EOF` for an empty body.
   */
  push = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    let auth = registryAuth(req);
    if (!req.header('x-registry-auth')) {
      const text = await req.text();
      if (!text.trim()) throw refused('EOF');
      try {
        auth = authConfig(JSON.parse(text) as AuthConfigJson);
      } catch (err) {
        throw refused((err as Error).message);
      }
    } else req.raw.resume();
    const stream = this.store.push({ name: req.params.name, tag: req.string('tag'), auth }, { requestId: req.requestId });
    await streamProgress(req, res, stream, SERVICE);
  };

  /** GET /images/search: Docker 1.0's keys for every version, and is_automated for today's clients. */
  search = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const r = await this.store.search({ term: req.string('term'), auth: registryAuth(req) }, { requestId: req.requestId, timeoutMs: 30_000 });
    res.list(
      200,
      r.results
        .sort((a, b) => b.starCount - a.starCount)
        .map((x) => ({ description: x.description, is_automated: x.isAutomated, is_official: x.isOfficial, is_trusted: x.isAutomated, name: x.name, star_count: x.starCount })),
    );
  };

  /**
   * POST /commit: the container's writable layer streams from the container
   * runtime into the image store, which makes it an image on top of the
   * container's own. `comment` is read (the docs' `m` never was); a JSON body
   * is the config, merged over the container's; Docker 1.0 ignored one it
   * could not read.
   */
  commit = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const containerRef = req.string('container');
    if (!containerRef) throw notFound('No such container: ');
    const text = (await req.text()).trim();
    // The container's node (in a cluster) sends its diff to the store.
    const { rt, ref } = await this.router.of(containerRef);
    const container = await rt.inspect({ id: ref }, { requestId: req.requestId });
    const header = {
      containerId: container.id, containerConfigJson: container.configJson, parent: container.image,
      repo: req.string('repo'), tag: req.string('tag'), comment: req.string('comment'), author: req.string('author'), configJson: text, exactConfig: false,
    };
    const id = await commitContainer(rt, this.store, header, req.requestId);
    res.json(201, { Id: id });
  };

  /** GET /images/(name)/get (v1.7) and GET /images/get?names= (v1.15, what today's CLI sends). */
  save = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const names = req.params.name ? [req.params.name] : req.query.getAll('names');
    if (names.length === 0) throw refused('No image named: give names=');
    const stream = this.store.save({ names }, { requestId: req.requestId });
    // Gate G3: application/x-tar from v1.1; Docker 1.0 set none for v1.0.
    await streamBytes(req, res, stream, SERVICE, req.above('1.0') ? 'application/x-tar' : undefined); // gate G3
  };

  /** POST /images/load: the tarball streams up; Docker 1.0 answered 200 with no body. */
  load = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const upload = this.store.load({ requestId: req.requestId });
    pumpBody(req, upload.stream, (data) => ({ data }));
    await upload.response;
    res.noContent(200);
  };

  /** POST /images/create: pull when fromImage is set, otherwise import from fromSrc. */
  create = async (req: ApiRequest, res: ApiResponse): Promise<void> => {
    const fromImage = req.string('fromImage');
    if (fromImage) {
      // Without a tag, every tag of the repository: side by side above v1.3, one after another before (gate G2).
      const stream = this.store.pull({ image: fromImage, tag: req.string('tag'), auth: registryAuth(req), oneAtATime: !req.above('1.3'), heldCredentials: '' }, { requestId: req.requestId });
      req.raw.resume();
      return streamProgress(req, res, stream, SERVICE);
    }
    const fromSrc = req.string('fromSrc');
    if (!fromSrc) throw refused('Either fromImage or fromSrc must be set');
    const upload = this.store.import({ requestId: req.requestId });
    upload.write({ part: { $case: 'header', header: { fromSrc, repo: req.string('repo'), tag: req.string('tag'), comment: req.string('message') } } });
    if (fromSrc === '-') {
      // The request body goes up as it arrives; gRPC flow control paces the client.
      pumpBody(req, upload, (chunk) => ({ part: { $case: 'chunk' as const, chunk } }));
    } else {
      upload.end();
      req.raw.resume();
    }
    await streamProgress(req, res, upload, SERVICE);
  };
}

