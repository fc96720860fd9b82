// WebSocket attach (GET /containers/(id)/attach/ws): output as text frames,
// never multiplexed; frames in are stdin; no Origin, no handshake.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { rssKiB, sleep, type Stack, startStackWithBusybox, stopStack } from './harness';

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
  const open = (id: string, query: string): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws+unix://${stack.socket}:/v1.12/containers/${id}/attach/ws?${query}`, { origin: 'http://localhost' });
      ws.on('open', () => resolve(ws));
      ws.on('error', reject);
    });

  test('a message is reassembled from fragments; one over 1 MiB closes that connection with 1009, and nothing else', async () => {
    const id = (await stack.docker(['run', '-d', '-i', 'busybox', 'sh', '-c', 'while read line; do echo "got $line"; done'])).stdout.trim();
    const ws = await open(id, 'stream=1&stdin=1&stdout=1');
    let text = '';
    ws.on('message', (d) => (text += d.toString()));
    ws.send('frag', { fin: false });
    ws.send('mented\n', { fin: true });
    for (let i = 0; i < 100 && !text.includes('got fragmented'); i++) await sleep(50);
    assert.match(text, /got fragmented\n/);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    // Sent as fragments, so no single frame is large: the bound is on the message.
    const piece = Buffer.alloc(256 * 1024, 'x');
    for (let i = 0; i < 5; i++) ws.send(piece, { fin: false, binary: true });
    ws.send('\n', { fin: true });
    assert.equal(await closed, 1009);
    // The container and the engine go on: a new client is served.
    const again = await open(id, 'stream=1&stdin=1&stdout=1');
    let more = '';
    again.on('message', (d) => (more += d.toString()));
    again.send('after\n');
    for (let i = 0; i < 100 && !more.includes('got after'); i++) await sleep(50);
    assert.match(more, /got after\n/);
    again.close();
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });

  test('stdin to a container that does not read it waits: the client is held back, the edge does not buffer it', async () => {
    const id = (await stack.docker(['run', '-d', '-i', 'busybox', 'sleep', '300'])).stdout.trim();
    const ws = await open(id, 'stream=1&stdin=1&stdout=1');
    const edge = Number(stack.process('api-edge').pid);
    const before = rssKiB(edge);
    const chunk = Buffer.alloc(512 * 1024, 'y');
    // Offer 256 MiB, never more than 8 MiB queued on the client side.
    let offered = 0;
    const deadline = Date.now() + 20_000;
    while (offered < 256 * 1024 * 1024 && Date.now() < deadline) {
      if (ws.bufferedAmount > 8 * 1024 * 1024) {
        await sleep(20);
        continue;
      }
      ws.send(chunk);
      offered += chunk.length;
    }
    const taken = offered - ws.bufferedAmount;
    assert.ok(taken < 64 * 1024 * 1024, `the engine took ${taken} bytes of stdin nobody reads`);
    const grown = rssKiB(edge) - before;
    assert.ok(grown < 96 * 1024, `the edge grew by ${grown} KiB`);
    const ps = await stack.docker(['ps', '-q']);
    assert.equal(ps.code, 0, 'the engine answers meanwhile');
    ws.terminate();
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
  });
});
