// A cluster node's layers: fetched by digest from the image store's layer
// blobs (the registry protocol's blob request, HTTPS with mutual TLS) the
// first time a container of this node needs them, once however many need
// them at once, and kept in `<root>/layers/<digest>`. Each one is extracted
// with the same confinement as any layer, into a directory of its own that is
// renamed into place only when its bytes matched the digest and size the
// store gave: a cut or altered transfer leaves nothing.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { applyLayer, removeTree } from '@stevedore/archive';
import { layerBlobPath } from '@stevedore/cluster';
import type { TlsFiles } from '@stevedore/config';
import type { images } from '@stevedore/contracts';
import { StevedoreError } from '@stevedore/errors';
import { Counter, once } from '@stevedore/metrics';
import type { Logger } from '@stevedore/logging';

const FETCH_TIMEOUT_MS = 60_000;

const fetchedBytes = once('stevedore_layer_bytes_fetched_total', () => new Counter({ name: 'stevedore_layer_bytes_fetched_total', help: 'Layer bytes a node fetched from the image store (what crossed the network to it)', labelNames: ['node'] }));
const fetchedLayers = once('stevedore_layers_fetched_total', () => new Counter({ name: 'stevedore_layers_fetched_total', help: 'Layers a node fetched from the image store, by outcome', labelNames: ['node', 'outcome'] }));

export class LayerCache {
  private readonly fetching = new Map<string, Promise<string>>();
  private readonly agent: https.Agent;
  /** Bytes fetched from the image store since start (what crossed the network to this node). */
  bytesFetched = 0;
  layersFetched = 0;

  constructor(
    /** The node's name, for its metrics. */
    private readonly node: string,
    private readonly dir: string,
    /** The image store's layer blobs, IPv4:port. */
    private readonly address: string,
    tls: Required<TlsFiles>,
    private readonly log: Logger,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // What a killed runtime was extracting.
    for (const entry of fs.readdirSync(dir)) if (entry.startsWith('tmp-')) removeTree(path.join(dir, entry));
    this.agent = new https.Agent({ keepAlive: true, ca: fs.readFileSync(tls.ca), cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) });
  }

  /** The directories of the layers (top first, as given), fetched where missing. */
  dirs(refs: images.LayerRef[]): Promise<string[]> {
    return Promise.all(refs.map((r) => this.layer(r)));
  }

  private pathOf(digest: string): string {
    return path.join(this.dir, digest.replace(/^sha256:/, ''));
  }

  private layer(ref: images.LayerRef): Promise<string> {
    if (!/^sha256:[0-9a-f]{64}$/.test(ref.digest)) return Promise.reject(new StevedoreError('internal', `the image store named a layer ${JSON.stringify(ref.digest)}`));
    const final = this.pathOf(ref.digest);
    if (fs.existsSync(final)) return Promise.resolve(final);
    let pending = this.fetching.get(ref.digest);
    if (!pending) {
      pending = this.fetch(ref, final).finally(() => this.fetching.delete(ref.digest));
      this.fetching.set(ref.digest, pending);
    }
    return pending;
  }

  private async fetch(ref: images.LayerRef, final: string): Promise<string> {
    const tmp = fs.mkdtempSync(path.join(this.dir, 'tmp-'));
    const started = Date.now();
    try {
      const body = await this.request(ref.digest);
      const hash = createHash('sha256');
      let size = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      body.on('error', (err) => counted.destroy(err));
      // A commit that changed nothing is a layer of no entries (its digest checked like any).
      await applyLayer(body.pipe(counted).pipe(new PassThrough()), tmp, { allowEmpty: true });
      const digest = `sha256:${hash.digest('hex')}`;
      if (digest !== ref.digest || size !== Number(ref.size)) throw new Error(`got ${size} bytes of ${digest}, not ${ref.size} of ${ref.digest}`);
      fs.renameSync(tmp, final);
      this.bytesFetched += size;
      this.layersFetched++;
      fetchedBytes.inc({ node: this.node }, size);
      fetchedLayers.inc({ node: this.node, outcome: 'fetched' });
      this.log.info({ image: ref.imageId, digest: ref.digest, bytes: size, ms: Date.now() - started }, 'layer fetched from the image store');
      return final;
    } catch (err) {
      removeTree(tmp);
      fetchedLayers.inc({ node: this.node, outcome: 'failed' });
      throw new StevedoreError('internal', `Fetching layer ${ref.digest.slice(7, 19)} of image ${ref.imageId.slice(0, 12)} from the image store failed: ${(err as Error).message}`);
    }
  }

  private request(digest: string): Promise<import('node:http').IncomingMessage> {
    const colon = this.address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const req = https.get(
        { host: this.address.slice(0, colon), port: Number(this.address.slice(colon + 1)), path: layerBlobPath(digest), agent: this.agent, timeout: FETCH_TIMEOUT_MS },
        (res) => {
          if (res.statusCode === 200) return resolve(res);
          res.resume();
          reject(new Error(`the image store answered ${res.statusCode}`));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer from the image store')));
      req.on('error', reject);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
