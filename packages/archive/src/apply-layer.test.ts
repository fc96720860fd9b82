import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { applyLayer } from './apply-layer';
import { decompress } from './decompress';
import { layerTar } from './layer-tar';
import { hostXattr } from './root-dir';
import * as tar from 'tar-stream';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('overlapped writes (a pull: gunzip in 256 KiB chunks, large ones written from the thread pool) give the same files and diff ID', async () => {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'apply-src-'));
  const outs: string[] = [];
  try {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    fs.writeFileSync(path.join(src, 'big.bin'), big);
    fs.writeFileSync(path.join(src, 'small.txt'), 'small\n');
    fs.mkdirSync(path.join(src, 'dir'));
    fs.writeFileSync(path.join(src, 'dir', 'mid.bin'), big.subarray(0, 70_000));
    const digests: string[] = [];
    for (const overlapWrites of [false, true]) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'apply-out-'));
      outs.push(out);
      const { stream, compression } = await decompress((layerTar(src) as Readable).pipe(createGzip()));
      assert.equal(compression, 'gzip');
      const applied = await applyLayer(stream, out, { overlapWrites });
      assert.equal(sha(fs.readFileSync(path.join(out, 'big.bin'))), sha(big), `big file whole (overlapWrites ${overlapWrites})`);
      assert.equal(fs.readFileSync(path.join(out, 'small.txt'), 'utf8'), 'small\n');
      assert.equal(sha(fs.readFileSync(path.join(out, 'dir', 'mid.bin'))), sha(big.subarray(0, 70_000)));
      digests.push(applied.digest);
    }
    assert.equal(digests[0], digests[1], 'the same diff ID either way');
  } finally {
    for (const d of [src, ...outs]) fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a directory whited out and made again in the same layer is there; an opaque marker at the top marks the layer', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'apply-again-'));
  try {
    const pack = tar.pack();
    pack.entry({ name: 'a/', type: 'directory', mode: 0o755 });
    pack.entry({ name: '.wh.a', type: 'file', size: 0 }, '');
    pack.entry({ name: 'a/b', type: 'file', mode: 0o644 }, 'again\n');
    pack.entry({ name: '.wh..wh..opq', type: 'file', size: 0 }, '');
    pack.finalize();
    await applyLayer(pack as unknown as Readable, out);
    assert.equal(fs.readFileSync(path.join(out, 'a', 'b'), 'utf8'), 'again\n');
    assert.equal(hostXattr(out, 'trusted.overlay.opaque')?.toString(), 'y');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
