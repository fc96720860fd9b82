// The resumable attachment against a fake runtime whose calls fail as
// grpc-js reports them: a runtime gone away (attach again, send again the
// stdin it had not confirmed), a refusal (reported), a container removed
// meanwhile (the end), a runtime that keeps going away (given up on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { Frame, type containers } from '@stevedore/contracts';
import { notFound, toGrpcError } from '@stevedore/errors';
import { createLogger } from '@stevedore/logging';
import { RuntimeAttachment, type AttachRuntime, type AttachTarget } from './runtime-attachment';

class FakeCall extends EventEmitter {
  readonly sent: containers.AttachRequest[] = [];
  cancelled = false;
  write(m: containers.AttachRequest): boolean {
    this.sent.push(m);
    return true;
  }
  cancel(): void {
    this.cancelled = true;
    this.fail(Object.assign(new Error('1 CANCELLED: Cancelled on client'), { code: status.CANCELLED, details: 'Cancelled on client', metadata: new Metadata() }));
  }
  reply(part: containers.AttachReply['part']): void {
    this.emit('data', { part });
  }
  fail(err: Error): void {
    setImmediate(() => this.emit('error', err));
  }
  end(): void {
    setImmediate(() => this.emit('end'));
  }
}

const gone = () => Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: status.UNAVAILABLE, details: 'Connection dropped', metadata: new Metadata() });
const refusal = (err: Error) => Object.assign(new Error(err.message), toGrpcError(err));

function setUp(target: Partial<AttachTarget> = {}) {
  const calls: FakeCall[] = [];
  const output: string[] = [];
  const rt: AttachRuntime = { attach: () => calls[calls.push(new FakeCall()) - 1] };
  const attachment = new RuntimeAttachment(
    rt,
    { id: 'c1', logs: true, stream: true, stdin: true, stdout: true, stderr: true, startedAt: '', ...target },
    'req1',
    createLogger('test', 'silent'),
    (_s, data) => output.push(data.toString()),
  );
  return { calls, output, attachment, done: attachment.run() };
}

const opens = (calls: FakeCall[]) => calls.map((c) => c.sent.find((m) => m.part?.$case === 'open')?.part);
const stdinOf = (call: FakeCall) => call.sent.flatMap((m) => (m.part?.$case === 'stdin' ? [Buffer.from(m.part.stdin).toString()] : m.part?.$case === 'stdinClosed' ? ['<eof>'] : []));

test('a runtime gone before the monitor had the stdin: attached again, the stdin and its end sent again, no logs asked twice', async () => {
  const { calls, output, attachment, done } = setUp();
  calls[0].reply({ $case: 'tty', tty: false });
  calls[0].reply({ $case: 'startedAt', startedAt: '' });
  assert.equal(attachment.sendStdin(Buffer.from('line\n')), true);
  attachment.closeStdin();
  calls[0].fail(gone());
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(calls.length, 2);
  assert.deepEqual(opens(calls).map((o) => o?.$case === 'open' && [o.open.logs, o.open.resume, o.open.resumeAfter]), [[true, false, ''], [false, true, '']]);
  assert.deepEqual(stdinOf(calls[1]), ['line\n', '<eof>']);
  calls[1].reply({ $case: 'connected', connected: true });
  calls[1].reply({ $case: 'output', output: { stream: 1, data: Buffer.from('got line\n') } });
  calls[1].end();
  assert.equal(await done, undefined);
  assert.deepEqual(output, ['got line\n']);
});

test('stdin the runtime confirmed is not sent again; the StartedAt it reported goes with the resume', async () => {
  const { calls, attachment, done } = setUp({ startedAt: 'from-inspect' });
  calls[0].reply({ $case: 'startedAt', startedAt: '2026-12-03T19:00:00Z' });
  attachment.sendStdin(Buffer.from('before\n'));
  calls[0].reply({ $case: 'connected', connected: true });
  attachment.sendStdin(Buffer.from('after\n'));
  calls[0].fail(gone());
  await new Promise((r) => setTimeout(r, 20));
  const open = opens(calls)[1];
  assert.equal(open?.$case === 'open' && open.open.resumeAfter, '2026-12-03T19:00:00Z');
  assert.deepEqual(stdinOf(calls[1]), []);
  attachment.cancel();
  assert.equal(await done, undefined, 'cancelled by its client: no failure to report');
});

test('a refusal is reported at once; a container removed while the runtime was away ends the attachment quietly', async () => {
  const first = setUp();
  first.calls[0].fail(refusal(new Error('boom')));
  assert.match(String((await first.done)?.message), /boom/);
  assert.equal(first.calls.length, 1);

  const second = setUp();
  second.calls[0].fail(gone());
  await new Promise((r) => setTimeout(r, 20));
  second.calls[1].fail(refusal(notFound('No such container: c1')));
  assert.equal(await second.done, undefined);
});

test('a runtime that keeps going away is given up on after five resumes, with the failure named', async () => {
  const { calls, done } = setUp();
  for (let i = 0; i < 6; i++) {
    while (calls.length <= i) await new Promise((r) => setTimeout(r, 5));
    calls[i].fail(gone());
  }
  assert.match(String((await done)?.message), /Cannot reach the container-runtime service: Connection dropped/);
  assert.equal(calls.length, 6);
});

test('the stdin kept for a resume is bounded: past 4 MiB unconfirmed none is kept, so a client cannot grow the edge', async () => {
  const { calls, attachment, done } = setUp();
  const chunk = Buffer.alloc(1024 * 1024, 1);
  for (let i = 0; i < 6; i++) attachment.sendStdin(chunk);
  calls[0].fail(gone());
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(stdinOf(calls[1]), [], 'nothing replayed, nothing held');
  attachment.cancel();
  assert.equal(await done, undefined);
});

/** A monitor's socket as the native helper serves it: SUBSCRIBE answered OK, then `frames`, then closed. */
async function fakeMonitor(frames: Array<[number, string]>): Promise<{ socket: string; close(): void; subscribed: Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attach-monitor-'));
  const socket = path.join(dir, 'attach.sock');
  const frame = (type: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(5);
    head[0] = type;
    head.writeUInt32BE(body.length, 1);
    return Buffer.concat([head, body]);
  };
  let subscribed!: () => void;
  const whenSubscribed = new Promise<void>((r) => (subscribed = r));
  const server = net.createServer((c) => {
    c.once('data', (d) => {
      assert.equal(d[0], Frame.subscribe);
      c.write(frame(Frame.ok, ''));
      subscribed();
      // The output comes a little later, after the runtime's call has ended: the attachment waits for it.
      setTimeout(() => c.end(Buffer.concat(frames.map(([t, text]) => frame(t, text)))), 50);
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, subscribed: whenSubscribed, close: () => { server.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

test('a monitor handed over by the runtime is read directly: subscribed, answered, its output the client\'s until it closes', async () => {
  const monitor = await fakeMonitor([[Frame.stdout, 'out\n'], [Frame.stderr, 'err\n'], [Frame.exit, '0']]);
  try {
    const { calls, output, done } = setUp({ stdin: false, stderr: false, directRoot: '/var/lib/stevedore', monitorDirs: [os.tmpdir()] });
    const open = opens(calls)[0];
    assert.equal(open?.$case === 'open' && open.open.directRoot, '/var/lib/stevedore');
    calls[0].reply({ $case: 'monitor', monitor: monitor.socket });
    await monitor.subscribed;
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(calls[0].sent.at(-1)?.part, { $case: 'monitorSubscribed', monitorSubscribed: true });
    calls[0].end();
    assert.equal(await done, undefined);
    assert.deepEqual(output, ['out\n'], 'stdout only, as asked, and only once the monitor closed');
  } finally {
    monitor.close();
  }
});

test('a monitor that cannot be read, or is not where this stack\'s monitors are, is answered false: the runtime relays the output', async () => {
  const elsewhere = await fakeMonitor([[Frame.stdout, 'not ours\n']]);
  try {
    for (const [target, monitor] of [
      [{ monitorDirs: [os.tmpdir()] }, path.join(os.tmpdir(), 'no-such-monitor', 'attach.sock')],
      [{ monitorDirs: ['/run/stevedore/0123abcd'] }, elsewhere.socket],
      [{ monitorDirs: ['/run/stevedore/0123abcd'] }, `/run/stevedore/0123abcd/../../..${elsewhere.socket}`],
      [{ directRoot: undefined, monitorDirs: [os.tmpdir()] }, elsewhere.socket],
    ] as Array<[Partial<AttachTarget>, string]>) {
      const { calls, done } = setUp({ stdin: false, directRoot: '/var/lib/stevedore', ...target });
      calls[0].reply({ $case: 'monitor', monitor });
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(calls[0].sent.at(-1)?.part, { $case: 'monitorSubscribed', monitorSubscribed: false }, monitor);
      calls[0].end();
      await done;
    }
  } finally {
    elsewhere.close();
  }
  const { calls, output, done } = setUp({ stdin: false, directRoot: '/var/lib/stevedore', monitorDirs: [os.tmpdir()] });
  calls[0].reply({ $case: 'monitor', monitor: path.join(os.tmpdir(), 'no-such-monitor', 'attach.sock') });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(calls[0].sent.at(-1)?.part, { $case: 'monitorSubscribed', monitorSubscribed: false });
  calls[0].reply({ $case: 'output', output: { stream: 1, data: Buffer.from('relayed\n') } });
  calls[0].end();
  assert.equal(await done, undefined);
  assert.deepEqual(output, ['relayed\n']);
});

test('a monitor that closes the output before the exit (it dropped this reader) ends the attachment, as a dropped relay did', async () => {
  const monitor = await fakeMonitor([[Frame.stdout, 'part of it\n']]);
  try {
    const { calls, output, done } = setUp({ stdin: false, directRoot: '/var/lib/stevedore', monitorDirs: [os.tmpdir()] });
    calls[0].reply({ $case: 'monitor', monitor: monitor.socket });
    // The runtime's call goes on (the container runs); the attachment ends without it.
    assert.equal(await done, undefined);
    assert.equal(calls[0].cancelled, true);
    assert.deepEqual(output, ['part of it\n']);
  } finally {
    monitor.close();
  }
});
