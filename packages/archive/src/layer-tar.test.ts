import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyLayer } from './apply-layer';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { layerTar, layerTarSize, treeTar } from './layer-tar';
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

test('a FIFO or a device copied out is archived as what it is, never opened', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'special-'));
  try {
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    execFileSync('mknod', [path.join(dir, 'zero'), 'c', '1', '5']);
    fs.mkdirSync(path.join(dir, 'sub'));
    execFileSync('mknod', [path.join(dir, 'sub', 'zero'), 'c', '1', '5']);
    for (const [top, type] of [['fifo', 'fifo'], ['zero', 'character-device'], ['sub', 'directory']] as const) {
      const entries: Array<{ name: string; type: string; size: number; devmajor?: number; devminor?: number }> = [];
      const extract = tar.extract();
      extract.on('entry', (h, stream, next) => {
        entries.push({ name: h.name, type: h.type ?? '', size: h.size ?? 0, devmajor: h.devmajor, devminor: h.devminor });
        stream.resume();
        stream.on('end', next);
      });
      const started = Date.now();
      await pipeline(treeTar(path.join(dir, top), { whiteouts: false, prefix: top }), extract);
      assert.ok(Date.now() - started < 2000, `${top}: nothing blocked`);
      assert.equal(entries[0].type, type);
      for (const e of entries) assert.equal(e.size, 0, `${e.name}: no content`);
      const dev = entries.find((e) => e.type === 'character-device');
      if (dev) assert.deepEqual([dev.devmajor, dev.devminor], [1, 5]);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
