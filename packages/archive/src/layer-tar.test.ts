import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyLayer } from './apply-layer';
import { layerTar, layerTarSize } from './layer-tar';
import { makeWhiteouts, markOpaque } from './whiteouts';
import { RootDir } from './root-dir';

async function byteLength(stream: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  return n;
}

test('layerTarSize predicts the exact length of layerTar without reading the files', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-size-'));
  try {
    const deep = path.join(dir, 'a'.repeat(90), 'b'.repeat(90), 'c'.repeat(90));
    fs.mkdirSync(deep, { recursive: true });
    for (const size of [0, 1, 511, 512, 513, 100_000]) fs.writeFileSync(path.join(dir, `f${size}`), Buffer.alloc(size, 7));
    fs.writeFileSync(path.join(deep, `${'long-name-'.repeat(12)}.txt`), 'deep'); // a pax header
    fs.writeFileSync(path.join(dir, 'naïve-ünïcode'), 'x');
    fs.symlinkSync('t'.repeat(150), path.join(dir, 'long-link')); // a long link target
    fs.linkSync(path.join(dir, 'f513'), path.join(dir, 'hard'));
    fs.mkdirSync(path.join(dir, 'opaque'));
    fs.mkdirSync(path.join(dir, 'empty'));
    RootDir.with(dir, (layer) => {
      markOpaque(layer, ['opaque']);
      makeWhiteouts(layer, ['gone']);
    });

    const predicted = await layerTarSize(dir);
    assert.equal(predicted, await byteLength(layerTar(dir) as AsyncIterable<Buffer>));
    assert.equal(predicted % 512, 0);

    // And the archive is whole: extracted, it gives the files back.
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-size-out-'));
    try {
      const applied = await applyLayer(layerTar(dir), out);
      assert.equal(fs.readFileSync(path.join(out, 'f100000')).length, 100_000);
      assert.equal(fs.readlinkSync(path.join(out, 'long-link')), 't'.repeat(150));
      assert.ok(applied.entries > 10);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('layerTarSize follows exclusions as layerTar does', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-size-'));
  try {
    fs.mkdirSync(path.join(dir, 'keep'));
    fs.mkdirSync(path.join(dir, 'skip'));
    fs.writeFileSync(path.join(dir, 'keep', 'a'), Buffer.alloc(3000));
    fs.writeFileSync(path.join(dir, 'skip', 'b'), Buffer.alloc(3000));
    const exclude = new Set(['skip']);
    const size = await layerTarSize(dir, exclude);
    assert.equal(size, await byteLength(layerTar(dir, exclude) as AsyncIterable<Buffer>));
    assert.ok(size < (await layerTarSize(dir)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
