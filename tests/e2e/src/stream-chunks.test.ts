// JSON streams as Docker 1.0 flushed them: one message per HTTP chunk (a
// period client, docker-py 0.5, reads a chunk's size line and then exactly
// one line of JSON). Read here from the raw socket, chunk by chunk: a build,
// an import, a push and a pull (from Debian's docker-registry), the events; and a
// failed RUN's exit status in errorDetail.code, which today's CLI exits with.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { context } from './build-fixtures';
import { type Stack, startRegistry, startStackWithBusybox, stopStack } from './harness';
import { busyboxRootfsTar, makeTar } from './images-fixtures';

/** The chunks of a chunked answer, as framed on the wire. */
function chunksOf(socket: string, method: string, path: string, body?: Buffer, extraHeaders: Record<string, string> = {}): Promise<{ status: number; chunks: string[] }> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socket);
    let raw = Buffer.alloc(0);
    conn.on('data', (d: Buffer) => (raw = Buffer.concat([raw, d])));
    conn.on('error', reject);
    conn.on('end', () => {
      const head = raw.indexOf('\r\n\r\n');
      const status = Number(raw.subarray(0, head).toString().split(' ')[1]);
      const chunks: string[] = [];
      let at = head + 4;
      for (;;) {
        const eol = raw.indexOf('\r\n', at);
        const size = parseInt(raw.subarray(at, eol).toString(), 16);
        if (!size) break;
        chunks.push(raw.subarray(eol + 2, eol + 2 + size).toString());
        at = eol + 2 + size + 2;
      }
      resolve({ status, chunks });
    });
    const headers = [`${method} ${path} HTTP/1.1`, 'Host: docker', 'Connection: close', ...(body ? ['Content-Type: application/x-tar', `Content-Length: ${body.length}`] : []), ...Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}`)];
    conn.write(`${headers.join('\r\n')}\r\n\r\n`);
    if (body) conn.write(body);
  });
}

/** Each chunk is one JSON message and its line end (none after a layer's progress, as Docker 1.0 wrote it). */
function oneMessageEach(chunks: string[]): Array<Record<string, unknown>> {
  return chunks.map((c, i) => {
    assert.match(c, /^\{.*\}(\r?\n)?$/s, `chunk ${i} is one message: ${JSON.stringify(c)}`);
    assert.equal(c.trimEnd().split('\n').length, 1, `chunk ${i}: ${JSON.stringify(c)}`);
    return JSON.parse(c) as Record<string, unknown>;
  });
}

describe('JSON streams, one message per chunk', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack));

  test('a build: every step line, its output and the last one each in a chunk of its own', async () => {
    const tar = await makeTar([{ name: 'Dockerfile', body: 'FROM busybox\nRUN echo one; echo two\nENV A b\nCMD ["true"]\n' }]);
    const { status, chunks } = await chunksOf(stack.socket, 'POST', '/v1.12/build?rm=1', tar);
    assert.equal(status, 200);
    const messages = oneMessageEach(chunks);
    assert.ok(messages.length >= 10, `${messages.length} messages`);
    assert.match(String(messages.at(-1)!.stream), /^Successfully built [0-9a-f]{12}\n$/);
  });

  test('a failed RUN: its exit status in errorDetail.code; the CLI exits with it', async () => {
    const tar = await makeTar([{ name: 'Dockerfile', body: 'FROM busybox\nRUN exit 3\n' }]);
    const { chunks } = await chunksOf(stack.socket, 'POST', '/v1.12/build', tar);
    const last = oneMessageEach(chunks).at(-1)!;
    assert.deepEqual(last, { errorDetail: { code: 3, message: "The command [/bin/sh -c exit 3] returned a non-zero code: 3" }, error: "The command [/bin/sh -c exit 3] returned a non-zero code: 3" });
    const cli = await stack.docker(['build', context({ Dockerfile: 'FROM busybox\nRUN exit 42\n' })]);
    assert.equal(cli.code, 42, cli.stderr);
  });

  test('an import: each progress message in a chunk of its own; events too', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const { status, chunks } = await chunksOf(stack.socket, 'POST', '/v1.12/images/create?fromSrc=-&repo=chunks&tag=one', fs.readFileSync(busyboxRootfsTar()));
    assert.equal(status, 200);
    assert.ok(oneMessageEach(chunks).length >= 1);
    assert.equal((await stack.docker(['run', '--rm', 'chunks:one', 'true'])).code, 0);
    const events = await chunksOf(stack.socket, 'GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000) + 1}`);
    const messages = oneMessageEach(events.chunks);
    assert.ok(messages.length >= 4, `${messages.length} events`);
    assert.ok(messages.some((m) => m.status === 'create') && messages.some((m) => m.status === 'destroy'));
  });

  test('a push and a pull: each progress message in a chunk of its own', async () => {
    const registry = await startRegistry();
    try {
      const name = `${registry.address}/chunks/busybox`;
      assert.equal((await stack.docker(['tag', 'busybox', name])).code, 0);
      const push = await chunksOf(stack.socket, 'POST', `/v1.12/images/${name}/push`, undefined, { 'X-Registry-Auth': 'e30=' });
      assert.equal(push.status, 200);
      assert.ok(oneMessageEach(push.chunks).length >= 2);
      assert.equal((await stack.docker(['rmi', name])).code, 0);
      const pull = await chunksOf(stack.socket, 'POST', `/v1.12/images/create?fromImage=${encodeURIComponent(name)}&tag=latest`);
      assert.equal(pull.status, 200);
      const messages = oneMessageEach(pull.chunks);
      assert.ok(messages.length >= 3, `${messages.length} messages`);
      assert.ok(!messages.some((m) => m.error), JSON.stringify(messages.at(-1)));
    } finally {
      await registry.stop();
    }
  });
});
