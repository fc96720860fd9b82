// A node's layer cache against a real HTTPS server with mutual TLS standing
// in for the image store's layer blobs: a layer fetched once however many
// ask, bytes that do not match their digest (or are cut short) leaving
// nothing, a store that answers 404, and a server whose certificate is not
// the cluster's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { layerTar } from '@stevedore/archive';
import { layerBlobDigest } from '@stevedore/cluster';
import { createLogger } from '@stevedore/logging';
import { LayerCache } from './layer-cache';

let dir: string;
let server: https.Server;
let address: string;
const blobs = new Map<string, Buffer>();
let requests = 0;
/** What the server sends instead of a blob's bytes, by digest. */
const lies = new Map<string, Buffer>();

function certs(at: string, names: string[]): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) execFileSync('openssl', ['req', '-x509', ...ec, '-days', '2', '-subj', `/CN=${ca}`, '-keyout', `${at}/${ca}-key.pem`, '-out', `${at}/${ca}.pem`], { stdio: 'ignore' });
  for (const n of names) {
    const ca = n.startsWith('other') ? 'other-ca' : 'ca';
    execFileSync('openssl', ['req', ...ec, '-subj', `/CN=${n}`, '-keyout', `${at}/${n}-key.pem`, '-out', `${at}/${n}.csr`], { stdio: 'ignore' });
    fs.writeFileSync(`${at}/${n}.ext`, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    execFileSync('openssl', ['x509', '-req', '-in', `${at}/${n}.csr`, '-CA', `${at}/${ca}.pem`, '-CAkey', `${at}/${ca}-key.pem`, '-CAcreateserial', '-days', '2', '-extfile', `${at}/${n}.ext`, '-out', `${at}/${n}.pem`], { stdio: 'ignore' });
  }
}

const tls = (name: string) => ({ ca: path.join(dir, 'ca.pem'), cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}-key.pem`) });

async function blobOf(files: Record<string, string>): Promise<{ digest: string; size: number }> {
  const src = fs.mkdtempSync(path.join(dir, 'src-'));
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(src, name), content);
  const chunks: Buffer[] = [];
  for await (const c of layerTar(src)) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  blobs.set(digest, bytes);
  return { digest, size: bytes.length };
}

function serve(serverName: string): Promise<https.Server> {
  const s = https.createServer({ ...Object.fromEntries(Object.entries(tls(serverName)).map(([k, v]) => [k, fs.readFileSync(v)])), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    requests++;
    const digest = layerBlobDigest(req.url ?? '');
    const body = digest ? (lies.get(digest) ?? blobs.get(digest)) : undefined;
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': body.length });
    // Slowly, so that concurrent asks overlap.
    setTimeout(() => res.end(body), 100);
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-cache-'));
  certs(dir, ['store', 'node', 'other-store']);
  server = await serve('store');
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const log = createLogger('test', 'silent');
const left = (cacheDir: string) => fs.readdirSync(cacheDir).sort();

test('a layer is fetched once however many ask at once, and kept', async () => {
  const cacheDir = path.join(dir, 'cache-1');
  const cache = new LayerCache('node-t', cacheDir, address, tls('node'), log);
  const layer = await blobOf({ hello: 'world\n' });
  const ref = { imageId: 'a'.repeat(64), ...layer };
  const before = requests;
  const dirs = await Promise.all([cache.dirs([ref]), cache.dirs([ref]), cache.dirs([ref])]);
  assert.equal(requests - before, 1);
  assert.equal(fs.readFileSync(path.join(dirs[0][0], 'hello'), 'utf8'), 'world\n');
  assert.deepEqual(new Set(dirs.map((d) => d[0])).size, 1);
  await cache.dirs([ref]);
  assert.equal(requests - before, 1, 'kept: not fetched again');
  assert.equal(cache.bytesFetched, layer.size);
  cache.close();
});

test('a layer of no entries (a commit that changed nothing, as every #(nop) build step makes) is a layer like any', async () => {
  const cache = new LayerCache('node-t', path.join(dir, 'cache-empty'), address, tls('node'), log);
  const empty = await blobOf({});
  assert.equal(empty.digest, 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
  const [layer] = await cache.dirs([{ imageId: 'e'.repeat(64), ...empty }]);
  assert.deepEqual(fs.readdirSync(layer), []);
  cache.close();
});

test('bytes that do not match the digest, or fall short of the size, are refused and leave nothing', async () => {
  const cacheDir = path.join(dir, 'cache-2');
  const cache = new LayerCache('node-t', cacheDir, address, tls('node'), log);
  const real = await blobOf({ a: 'the real one\n' });
  const other = await blobOf({ a: 'something else\n' });
  lies.set(real.digest, blobs.get(other.digest)!);
  await assert.rejects(cache.dirs([{ imageId: 'b'.repeat(64), ...real }]), /Fetching layer [0-9a-f]{12} of image bbbbbbbbbbbb from the image store failed: got \d+ bytes of sha256:/);
  lies.delete(real.digest);
  await assert.rejects(cache.dirs([{ imageId: 'b'.repeat(64), digest: real.digest, size: real.size + 512 }]), /not \d+ of sha256/);
  assert.deepEqual(left(cacheDir), [], 'no layer and no temporary directory left');
  await assert.rejects(cache.dirs([{ imageId: 'c'.repeat(64), digest: `sha256:${'0'.repeat(64)}`, size: 10 }]), /answered 404/);
  await assert.rejects(cache.dirs([{ imageId: 'c'.repeat(64), digest: '../../etc', size: 10 }]), /named a layer/);
  assert.deepEqual(left(cacheDir), []);
  cache.close();
});

test('a server whose certificate is not of the cluster\'s CA is not spoken to', async () => {
  const impostor = await serve('other-store');
  const cacheDir = path.join(dir, 'cache-3');
  const cache = new LayerCache('node-t', cacheDir, `127.0.0.1:${(impostor.address() as AddressInfo).port}`, tls('node'), log);
  const layer = await blobOf({ x: 'y' });
  await assert.rejects(cache.dirs([{ imageId: 'd'.repeat(64), ...layer }]), /certificate/);
  assert.deepEqual(left(cacheDir), []);
  cache.close();
  impostor.close();
});

test('what a killed runtime was extracting is removed when the cache opens', () => {
  const cacheDir = path.join(dir, 'cache-4');
  fs.mkdirSync(path.join(cacheDir, 'tmp-abc', 'half'), { recursive: true });
  const cache = new LayerCache('node-t', cacheDir, address, tls('node'), log);
  assert.deepEqual(left(cacheDir), []);
  cache.close();
});
