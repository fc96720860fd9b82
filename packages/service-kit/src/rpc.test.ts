// Writing to a call at its reader's pace: what a handler awaits must settle,
// whatever the state of the call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { writeWithBackpressure } from './rpc';

/** A call whose buffer is full: write() says so, and it drains only when told. */
class FullCall extends EventEmitter {
  written = 0;
  write(): boolean {
    this.written++;
    return false;
  }
}

const asCall = (c: FullCall) => c as unknown as grpc.ServerWritableStream<unknown, string>;

test('a full call: the write waits for its drain, or rejects when the caller goes meanwhile', async () => {
  const call = new FullCall();
  const live = new AbortController();
  const waiting = writeWithBackpressure(asCall(call), 'm', live.signal);
  assert.ok(waiting);
  call.emit('drain');
  await waiting;
  const gone = new AbortController();
  const pending = writeWithBackpressure(asCall(call), 'm', gone.signal);
  gone.abort();
  await assert.rejects(pending!, /call cancelled/);
});

test('a call whose caller has already gone is not waited for: the write rejects at once (it used to wait forever)', async () => {
  const call = new FullCall();
  const gone = new AbortController();
  gone.abort();
  const outcome = await Promise.race([
    writeWithBackpressure(asCall(call), 'm', gone.signal)!.then(() => 'resolved', () => 'rejected'),
    new Promise((r) => setTimeout(() => r('hung'), 500)),
  ]);
  assert.equal(outcome, 'rejected');
  assert.equal(call.written, 0, 'nothing written to a call nobody reads');
});
