// Layers as a cluster's nodes fetch them: by digest, with the registry
// protocol's blob request (`GET /v2/<name>/blobs/<digest>`) over HTTPS with
// mutual TLS. A layer's blob is its tar as save and push make it (a fixed
// order, so always the same bytes); its digest is computed the first time a
// node asks for the image, once however many ask at once, and kept.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { layerTar } from '@stevedore/archive';
import { layerBlobDigest } from '@stevedore/cluster';
import type { TlsFiles } from '@stevedore/config';
import type { images } from '@stevedore/contracts';
import type { Logger } from '@stevedore/logging';
import { Counter, once } from '@stevedore/metrics';
import type { ImageDb, ImageRow } from './store/image-db';
import type { LayerStore } from './store/layer-store';


const servedBytes = once('stevedore_layer_blob_bytes_served_total', () => new Counter({ name: 'stevedore_layer_blob_bytes_served_total', help: 'Layer bytes the image store sent to the cluster\'s nodes' }));

export class LayerBlobs {
  private readonly computing = new Map<string, Promise<images.LayerRef>>();

  constructor(
    private readonly db: ImageDb,
    private readonly layers: LayerStore,
    private readonly log: Logger,
  ) {}

  /** The layers of a chain (top first) by digest, each computed if it never was. */
  refs(chain: ImageRow[]): Promise<images.LayerRef[]> {
    return Promise.all(chain.map((row) => this.ref(row)));
  }

  private ref(row: ImageRow): Promise<images.LayerRef> {
    if (row.layer_digest && row.layer_tar_size != null) return Promise.resolve({ imageId: row.id, digest: row.layer_digest, size: row.layer_tar_size });
    let pending = this.computing.get(row.id);
    if (!pending) {
      pending = this.digest(row).finally(() => this.computing.delete(row.id));
      this.computing.set(row.id, pending);
    }
    return pending;
  }

  private async digest(row: ImageRow): Promise<images.LayerRef> {
    const hash = createHash('sha256');
    let size = 0;
    await pipeline(layerTar(this.layers.path(row.layer)), async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        size += chunk.length;
      }
      yield* [];
    });
    const digest = `sha256:${hash.digest('hex')}`;
    this.db.recordLayerDigest(row.id, digest, size);
    this.log.info({ image: row.id, digest, size }, 'layer digest computed for the cluster\'s nodes');
    return { imageId: row.id, digest, size };
  }

  /** The HTTPS server nodes fetch layers from; only clients with a certificate of the cluster's CA are answered. */
  listen(address: string, tls: Required<TlsFiles>): Promise<https.Server> {
    const server = https.createServer(
      { cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key), ca: fs.readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true },
      (req, res) => void this.answer(req.method ?? 'GET', req.url ?? '/', res),
    );
    const colon = address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(address.slice(colon + 1)), address.slice(0, colon), () => resolve(server));
    });
  }

  private async answer(method: string, url: string, res: import('node:http').ServerResponse): Promise<void> {
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
      return;
    }
    const digest = layerBlobDigest(url);
    const row = digest && (method === 'GET' || method === 'HEAD') ? this.db.byLayerDigest(digest) : undefined;
    if (!digest || !row || row.layer_tar_size == null) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: digest ?? url }] }));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': row.layer_tar_size, 'Docker-Content-Digest': digest });
    if (method === 'HEAD') return void res.end();
    res.once('finish', () => servedBytes.inc(row.layer_tar_size ?? 0));
    // Streamed from the directory; a layer removed meanwhile cuts the answer short, which the node's digest check refuses.
    await pipeline(layerTar(this.layers.path(row.layer)), res).catch((err: Error) => this.log.warn({ digest, err: err.message }, 'a layer blob was cut short'));
  }
}
