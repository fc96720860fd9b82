import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bytesFieldPayload, containers, gatherPayload, images, OUTPUT_HEADER_ROOM, outputCopy, outputInPlace } from './index';

const generatedImport = (m: images.ImportRequest) => Buffer.from(images.ImportRequest.encode(m).finish());

test('bulk messages are encoded exactly as the generated codec encodes them, and read back as views', () => {
  const method = images.ImageStoreService.import;
  for (const size of [1, 127, 128, 16383, 16384, 1 << 20, (1 << 21) + 7]) {
    const chunk = randomBytes(size);
    const message: images.ImportRequest = { part: { $case: 'chunk', chunk } };
    const wire = method.requestSerialize(message);
    assert.deepEqual(wire, generatedImport(message), `size ${size}`);
    const back = method.requestDeserialize(wire);
    assert.equal(back.part?.$case, 'chunk');
    assert.ok(back.part?.$case === 'chunk' && back.part.chunk.equals(chunk));
  }
});

test('other messages of a bulk type go through the generated codec', () => {
  const method = images.ImageStoreService.import;
  const header: images.ImportRequest = { part: { $case: 'header', header: { fromSrc: '-', repo: 'a', tag: 'b', comment: '' } } };
  const wire = method.requestSerialize(header);
  assert.deepEqual(wire, generatedImport(header));
  assert.deepEqual(method.requestDeserialize(wire), header);
});

test('a payload is read only when the message is exactly that one field', () => {
  const chunk = Buffer.from('hello');
  const wire = containers.ContainerRuntimeService.export.responseSerialize({ data: chunk });
  assert.deepEqual(bytesFieldPayload(1, wire), chunk);
  assert.equal(bytesFieldPayload(2, wire), undefined, 'another field number');
  assert.equal(bytesFieldPayload(1, wire.subarray(0, wire.length - 1)), undefined, 'truncated');
  assert.equal(bytesFieldPayload(1, Buffer.concat([wire, Buffer.from([8, 1])])), undefined, 'followed by another field');
  assert.equal(bytesFieldPayload(1, Buffer.from([10, 0x80])), undefined, 'a length that never ends');
  assert.deepEqual(containers.ContainerRuntimeService.export.responseDeserialize(wire), { data: chunk });
});

test('a gathered payload is sent as it was laid out: encoded exactly, without another copy', () => {
  const pieces = [randomBytes(1000), randomBytes(70_000), randomBytes(5)];
  const size = pieces.reduce((n, p) => n + p.length, 0);
  const payload = gatherPayload(pieces, size);
  assert.ok(payload.equals(Buffer.concat(pieces)));
  const method = images.ImageStoreService.import;
  const message: images.ImportRequest = { part: { $case: 'chunk', chunk: payload } };
  const wire = method.requestSerialize(message);
  assert.deepEqual(wire, generatedImport(message));
  assert.equal(wire.buffer, payload.buffer, 'the wire form shares the payload memory');
  // The same payload in a message of another field number gets that field's tag.
  const load = images.ImageStoreService.load.requestSerialize({ data: payload });
  assert.deepEqual(load, Buffer.from(images.DataChunk.encode({ data: payload }).finish()));
});

test('output (logs, attach) and stdin are encoded as the generated codecs encode them, and read back as views of the message', () => {
  const rt = containers.ContainerRuntimeService;
  for (const size of [0, 1, 127, 128, 300_000]) {
    for (const stream of [0, 1, 2]) {
      const data = randomBytes(size);
      const output: containers.Output = { stream, data };
      const logWire = rt.logs.responseSerialize(output);
      assert.deepEqual(logWire, Buffer.from(containers.Output.encode(output).finish()), `logs ${size}/${stream}`);
      const back = rt.logs.responseDeserialize(logWire);
      assert.equal(back.stream, stream);
      assert.ok(Buffer.from(back.data).equals(data));
      const reply: containers.AttachReply = { part: { $case: 'output', output } };
      const attachWire = rt.attach.responseSerialize(reply);
      assert.deepEqual(attachWire, Buffer.from(containers.AttachReply.encode(reply).finish()), `attach ${size}/${stream}`);
      const r = rt.attach.responseDeserialize(attachWire);
      assert.ok(r.part?.$case === 'output' && r.part.output.stream === stream && Buffer.from(r.part.output.data).equals(data));
      if (size > 0) assert.equal((r.part.output.data as Buffer).buffer, attachWire.buffer, 'a view, not a copy');
    }
  }
  // Other replies and requests: the generated codecs, both ways.
  for (const reply of [{ part: { $case: 'tty', tty: true } }, { part: { $case: 'startedAt', startedAt: 'x' } }, { part: { $case: 'connected', connected: true } }] as containers.AttachReply[]) {
    assert.deepEqual(rt.attach.responseDeserialize(rt.attach.responseSerialize(reply)), reply);
  }
  const stdin: containers.AttachRequest = { part: { $case: 'stdin', stdin: Buffer.from('typed') } };
  const stdinWire = rt.attach.requestSerialize(stdin);
  assert.deepEqual(stdinWire, Buffer.from(containers.AttachRequest.encode(stdin).finish()));
  assert.deepEqual(rt.attach.requestDeserialize(stdinWire), stdin);
  const open: containers.AttachRequest = { part: { $case: 'open', open: { id: 'c', logs: true, stream: true, stdin: false, stdout: true, stderr: true, resume: false, resumeAfter: '', exec: false, directRoot: '' } } };
  assert.deepEqual(rt.attach.requestDeserialize(rt.attach.requestSerialize(open)), open);
});

test('an output laid out in place is sent as it lies, alone or in an AttachReply, framed for gRPC, encoded exactly as the generated codec encodes it', () => {
  const service = containers.ContainerRuntimeService;
  /** The message inside a gRPC frame, after checking the frame's header and mark. */
  const unframed = (wire: Buffer) => {
    assert.equal((wire as unknown as Record<symbol, unknown>)[Symbol.for('grpc-js.framed-message')], true);
    assert.deepEqual([wire[0], wire.readUInt32BE(1)], [0, wire.length - 5]);
    return wire.subarray(5);
  };
  for (const [size, stream] of [[1, 1], [300_000, 2], [5, 0], [20_000_000, 1]] as const) {
    const buffer = Buffer.alloc(OUTPUT_HEADER_ROOM + size);
    const data = randomBytes(size);
    data.copy(buffer, OUTPUT_HEADER_ROOM);
    for (const output of [outputInPlace(buffer, OUTPUT_HEADER_ROOM, OUTPUT_HEADER_ROOM + size, stream), { stream, data: outputCopy([data.subarray(0, 2), data.subarray(2)]) }]) {
      const wire = service.logs.responseSerialize(output);
      assert.deepEqual(unframed(wire), Buffer.from(containers.Output.encode({ stream, data }).finish()));
      assert.equal(wire.buffer, output.data.buffer, 'the buffer itself, not a copy');
      const reply: containers.AttachReply = { part: { $case: 'output', output } };
      const replyWire = service.attach.responseSerialize(reply);
      assert.deepEqual(unframed(replyWire), Buffer.from(containers.AttachReply.encode(reply).finish()));
      assert.equal(replyWire.buffer, output.data.buffer, 'the buffer itself, not a copy');
      assert.deepEqual(service.attach.responseDeserialize(unframed(replyWire)), { part: { $case: 'output', output: { stream, data } } });
    }
  }
  // Output not laid out so goes unframed, for gRPC to frame.
  const plain = service.logs.responseSerialize({ stream: 1, data: Buffer.from('x') });
  assert.deepEqual(plain, Buffer.from(containers.Output.encode({ stream: 1, data: Buffer.from('x') }).finish()));
});

