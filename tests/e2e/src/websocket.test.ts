// WebSocket attach (GET /containers/(id)/attach/ws): output as text frames,
// never multiplexed; frames in are stdin; no Origin, no handshake.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { type Stack, startStackWithBusybox, stopStack } from './harness';

describe('WebSocket attach', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
  });
  after(() => stopStack(stack));

  test('stdin in, output out as text frames', async () => {
    const id = (await stack.docker(['run', '-d', '-i', 'busybox', 'sh', '-c', 'while read line; do echo "got $line"; echo "err $line" >&2; done'])).stdout.trim();
    const ws = new WebSocket(`ws+unix://${stack.socket}:/v1.12/containers/${id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1`, { origin: 'http://localhost' });
    const received: Array<{ text: string; binary: boolean }> = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => ws.send('hello\n'));
      ws.on('message', (data, isBinary) => {
        received.push({ text: data.toString(), binary: isBinary });
        if (received.map((r) => r.text).join('').includes('err hello')) resolve();
      });
      ws.on('error', reject);
      setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(received)}`)), 10_000);
    });
    ws.close();
    const all = received.map((r) => r.text).join('');
    assert.match(all, /got hello\n/);
    assert.ok(received.every((r) => !r.binary), 'text frames');
    assert.ok(!all.includes('\u0001\u0000\u0000\u0000'), 'never multiplexed');
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });

  test('without an Origin header the handshake is refused with 403; an unknown container is 404', async () => {
    const id = (await stack.docker(['run', '-d', 'busybox', 'sleep', '60'])).stdout.trim();
    const status = (url: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, { headers });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => undefined);
      });
    assert.equal(await status(`ws+unix://${stack.socket}:/v1.12/containers/${id}/attach/ws?stream=1&stdout=1`), 403);
    assert.equal(await status(`ws+unix://${stack.socket}:/v1.12/containers/nothere/attach/ws?stream=1`, { Origin: 'http://localhost' }), 404);
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });
});
