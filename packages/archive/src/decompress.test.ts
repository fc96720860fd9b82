import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { decompress, detectCompression, isArchive } from './decompress';

async function tarOf(name: string, body: string): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A stream that hands out one byte per read, as a slow network might. */
const byteByByte = (data: Buffer) => Readable.from([...data].map((b) => Buffer.from([b])), { objectMode: false });

test('the magic numbers are Docker 1.0\'s, and a head shorter than one is not that format', async () => {
  const archive = await tarOf('a.txt', 'a');
  assert.equal(detectCompression(gzipSync(archive)), 'gzip');
  assert.equal(detectCompression(execFileSync('bzip2', ['-c'], { input: archive })), 'bzip2');
  assert.equal(detectCompression(execFileSync('xz', ['-c'], { input: archive })), 'xz');
  assert.equal(detectCompression(archive), 'none');
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b])), 'none', 'two bytes of gzip magic are not enough');
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x07, 0])), 'none', 'gzip names deflate (8) as its method');
  assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a])), 'none');
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
});

test('an archive for ADD: compressed, or a tar whose header says ustar; other files are copied as they are', async () => {
  const archive = await tarOf('a.txt', 'a');
  assert.equal(isArchive(archive.subarray(0, 512)), true);
  assert.equal(isArchive(gzipSync(Buffer.from('not a tar at all')).subarray(0, 512)), true, 'compressed is enough, as in Docker 1.0');
  assert.equal(isArchive(Buffer.from('BZh91AY&SY')), true);
  assert.equal(isArchive(archive.subarray(0, 511)), false, 'a tar header is 512 bytes');
  assert.equal(isArchive(Buffer.from('#!/bin/sh\necho hello\n')), false);
  assert.equal(isArchive(Buffer.alloc(512, 'x')), false);
});

test('decompress tells the format when the first bytes arrive one at a time, and loses none of them', async () => {
  const archive = await tarOf('b.txt', 'hello');
  for (const [packed, expected] of [
    [gzipSync(archive), 'gzip'],
    [execFileSync('xz', ['-c'], { input: archive }), 'xz'],
    [archive, 'none'],
  ] as const) {
    const { stream, compression } = await decompress(byteByByte(packed));
    assert.equal(compression, expected);
    assert.deepEqual(await bytesOf(stream), archive);
  }
});

test('a stream shorter than the longest magic is given back whole', async () => {
  for (const short of [Buffer.alloc(0), Buffer.from('abc'), Buffer.from([0x1f, 0x8b])]) {
    const { stream, compression } = await decompress(byteByByte(short));
    assert.equal(compression, 'none');
    assert.deepEqual(await bytesOf(stream), short);
  }
});
