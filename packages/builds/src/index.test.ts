// The context and output streams against a real Redis (a private
// redis-server on a unix socket).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectRedis, startScratchRedis, type Redis, type ScratchRedis } from '@stevedore/redis';
import { appendOutput, BuildKeys, BuildRuns, CONTEXT_INLINE_BYTES, ContextSink, OutputWriter, readContextStream, readOutput, type OutputEntry } from './index';

let server: ScratchRedis;
let writer: Redis;
let reader: Redis;
const keys = new BuildKeys('test:');

before(async () => {
  server = await startScratchRedis('builds-redis');
  writer = connectRedis(server.url);
  reader = connectRedis(server.url);
});

after(() => {
  writer.disconnect();
  reader.disconnect();
  server.stop();
});

async function readAll(buildId: string, signal = new AbortController().signal): Promise<{ bytes: Buffer; blob: string }> {
  const chunks: Buffer[] = [];
  let blob = '';
  for await (const part of readContextStream(reader, keys, buildId, signal)) {
    if (Buffer.isBuffer(part)) chunks.push(part);
    else blob = part.blob;
  }
  return { bytes: Buffer.concat(chunks), blob };
}

test('a context is read as it arrives, in order, to its end', async () => {
  const reading = readAll('small'); // before anything is written: the worker may take the job first
  const sink = new ContextSink(writer, keys, 'small');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await sink.take(Buffer.from('first ')), true);
  assert.equal(await sink.take(Buffer.from('second')), true);
  await sink.finish('');
  assert.deepEqual(await reading, { bytes: Buffer.from('first second'), blob: '' });
  assert.ok((await writer.ttl(keys.context('small'))) > 0, 'the stream expires if nobody deletes it');
});

test('past CONTEXT_INLINE_BYTES the sink refuses, and the end names the blob holding the rest', async () => {
  const sink = new ContextSink(writer, keys, 'large');
  const half = Buffer.alloc(CONTEXT_INLINE_BYTES / 2, 1);
  assert.equal(await sink.take(half), true);
  assert.equal(await sink.take(half), true);
  assert.equal(await sink.take(Buffer.from('x')), false);
  assert.equal(await sink.take(Buffer.from('y')), false, 'once full, always full (the order is kept)');
  await sink.finish('blob-id');
  const { bytes, blob } = await readAll('large');
  assert.equal(bytes.length, CONTEXT_INLINE_BYTES);
  assert.equal(blob, 'blob-id');
});

test("the edge's failure and a cancellation end the reading with an error", async () => {
  const sink = new ContextSink(writer, keys, 'failed');
  await sink.take(Buffer.from('part'));
  await sink.fail('the client went away');
  await assert.rejects(readAll('failed'), /the client went away/);
  const controller = new AbortController();
  const waiting = readAll('never-written', controller.signal);
  controller.abort();
  await assert.rejects(waiting, /cancelled/);
});

test("the output lines of one turn go as one stream entry, read back in order up to the end", async () => {
  const out = new OutputWriter(new BuildRuns(writer, keys), 'out', '', () => assert.fail('no fence'));
  for (let i = 0; i < 5; i++) void out.write({ kind: 'out', text: `line ${i}\n` });
  await out.write({ kind: 'done', text: 'image' });
  assert.equal(await writer.xlen(keys.output('out')), 1);
  const read: OutputEntry[][] = [];
  for await (const batch of readOutput(reader, keys, 'out', new AbortController().signal)) read.push(batch);
  assert.deepEqual(read.flat(), [...[0, 1, 2, 3, 4].map((i) => ({ kind: 'out', text: `line ${i}\n` })), { kind: 'done', text: 'image' }]);
});

test("an error's exit status is kept with it, and ends the output", async () => {
  await appendOutput(writer, keys, 'coded', [{ kind: 'out', text: 'Step 1 : RUN exit 3\n' }, { kind: 'error', text: 'failed', code: 3 }, { kind: 'out', text: 'never read' }]);
  const read: OutputEntry[] = [];
  for await (const batch of readOutput(reader, keys, 'coded', new AbortController().signal)) read.push(...batch);
  assert.deepEqual(read, [{ kind: 'out', text: 'Step 1 : RUN exit 3\n' }, { kind: 'error', text: 'failed', code: 3 }]);
});
