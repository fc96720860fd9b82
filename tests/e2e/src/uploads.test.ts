// Uploads are bounded by size, never by time: with the headers' timeout cut
// to 1.5 s by its setting, an import whose body takes several times that
// still lands, while a client that never finishes its headers is let go.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { busyboxRootfsTar } from './images-fixtures';
import { sleep, type Stack, startStack, stopStack } from './harness';

describe('uploads and time', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ STEVEDORE_API_HEADERS_TIMEOUT: '1500' });
  });
  after(() => stopStack(stack));

  test('an import whose body trickles in for 5 s (past every timeout set) lands whole', async () => {
    const body = fs.readFileSync(busyboxRootfsTar());
    const started = Date.now();
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ socketPath: stack.socket, method: 'POST', path: '/v1.12/images/create?fromSrc=-&repo=slow&tag=1', headers: { 'Transfer-Encoding': 'chunked' }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      (async () => {
        const pieces = 20;
        const size = Math.ceil(body.length / pieces);
        for (let i = 0; i < pieces; i++) {
          req.write(body.subarray(i * size, (i + 1) * size));
          await sleep(250);
        }
        req.end();
      })().catch(reject);
    });
    assert.ok(Date.now() - started >= 5000, 'the upload took its time');
    assert.equal(answer.status, 200, answer.text);
    const inspect = await stack.request('GET', '/v1.12/images/slow:1/json');
    assert.equal(inspect.status, 200);
  });

  test('a client that never finishes its headers is let go after the headers timeout; the API answers meanwhile', async () => {
    const socket = net.connect(stack.socket);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /v1.12/images/create?fromSrc=- HTTP/1.1\r\nHost: x\r\n'); // and nothing more
    let closedAt = 0;
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c));
    const started = Date.now();
    const closed = new Promise<void>((resolve) => socket.on('close', () => ((closedAt = Date.now()), resolve())));
    assert.equal((await stack.request('GET', '/_ping')).status, 200);
    await Promise.race([closed, sleep(10_000)]);
    assert.ok(closedAt > 0, 'the connection was closed');
    assert.ok(closedAt - started < 6000, `within a few seconds of the 1.5 s headers timeout (${closedAt - started} ms)`);
    assert.match(answer, /^HTTP\/1\.1 408/);
    socket.destroy();
  });
});
