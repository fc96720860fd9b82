import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { dockerGroupId, inheritedApiListeners } from '@stevedore/service-kit';
import { HeldApiSockets } from './api-sockets';

/** A stand-in for the API edge: answers every request with its PID, on the sockets it inherited. */
const EDGE = `
const http = require('node:http');
const { inheritedApiListeners } = require(${JSON.stringify(require.resolve('@stevedore/service-kit'))});
for (const [host, fd] of inheritedApiListeners()) {
  http.createServer((req, res) => res.end(String(process.pid))).listen({ fd }, () => process.send?.(host));
}
`;

function startEdge(held: HeldApiSockets): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', EDGE], { env: { ...process.env, ...held.childEnv() }, stdio: ['ignore', 'inherit', 'inherit', ...held.fds, 'ipc'] });
  return new Promise((resolve) => child.once('message', () => resolve(child)));
}

function get(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path: '/_ping', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('the held socket outlives its edge: a client arriving between two edges waits and is served by the next; close removes the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'held-'));
  const file = path.join(dir, 'api.sock');
  fs.writeFileSync(file, 'a stale file where the socket goes');
  const held = await HeldApiSockets.bind([`unix://${file}`]);
  try {
    assert.ok(fs.statSync(file).isSocket());
    assert.equal(fs.statSync(file).mode & 0o777, 0o660);
    if (dockerGroupId() !== undefined) assert.equal(fs.statSync(file).gid, dockerGroupId());
    const first = await startEdge(held);
    assert.equal(await get(file), String(first.pid));
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const waiting = get(file);
    await new Promise((r) => setTimeout(r, 300));
    const second = await startEdge(held);
    try {
      assert.equal(await waiting, String(second.pid));
    } finally {
      second.kill('SIGKILL');
    }
  } finally {
    held.close();
  }
  assert.ok(!fs.existsSync(file), 'closing the held socket removes its file');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an inherited descriptor that is not a socket is refused', () => {
  const fd = fs.openSync(__filename, 'r');
  try {
    assert.throws(() => inheritedApiListeners({ STEVEDORE_API_LISTEN_FDS: `${fd}=unix:///x.sock` }), /which is not an open socket/);
    assert.throws(() => inheritedApiListeners({ STEVEDORE_API_LISTEN_FDS: 'unix:///x.sock' }), /is not fd=host/);
    assert.deepEqual(inheritedApiListeners({}), new Map());
  } finally {
    fs.closeSync(fd);
  }
});

test('the sockets listen from the bind on, before any edge: a TCP port is never bound and idle, an early client waits', async () => {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  const held = await HeldApiSockets.bind([`tcp://127.0.0.1:${port}`]);
  try {
    // Another process cannot bind beside it (SO_REUSEADDR lets a socket bind a port nobody listens on).
    const intruder = createServer();
    const bound = await new Promise<string>((resolve) => {
      intruder.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      intruder.listen(port, '127.0.0.1', () => resolve('bound'));
    });
    intruder.close();
    assert.equal(bound, 'EADDRINUSE');
    // A client that comes before the first edge is in the backlog, then served.
    const { connect } = await import('node:net');
    const early = connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => early.once('connect', resolve).once('error', reject));
    early.write('GET /_ping HTTP/1.0\r\n\r\n');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      early.on('data', (d) => (text += d)).on('close', () => resolve(text));
    });
    const edge = await startEdge(held);
    try {
      assert.match(await answer, new RegExp(`\\r\\n\\r\\n${edge.pid}$`));
    } finally {
      edge.kill('SIGKILL');
    }
  } finally {
    held.close();
  }
});
