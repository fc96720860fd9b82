import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '@stevedore/config';
import { health } from '@stevedore/contracts';
import { notFound, StevedoreError } from '@stevedore/errors';
import { createLogger } from '@stevedore/logging';
import { connectService, serve } from './typed-grpc';

const SERVING = health.HealthCheckResponse_ServingStatus.SERVING;

/** A server of the health definition through `serve`, and a client of it through `connectService`. */
async function pair(t: { after(fn: () => void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'typed-grpc-'));
  const address = `unix:${path.join(dir, 'svc.sock')}`;
  const server = new grpc.Server();
  const binding = serve(health.HealthService, createLogger('test', 'silent'), {
    check: async (req) => {
      if (req.service === 'missing') throw notFound('No such service: missing');
      return { status: SERVING };
    },
    watch: async (_req, out, ctx) => {
      out.write({ status: SERVING });
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    },
  });
  server.addService(binding.definition, binding.implementation);
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  const client = connectService(health.HealthService, loadConfig({ STEVEDORE_EVENTS_ADDR: address }), 'events');
  t.after(() => {
    client.close();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return client;
}

test('a unary call answers with the typed response; a refusal arrives as a StevedoreError of its kind', async (t) => {
  const client = await pair(t);
  assert.deepEqual(await client.check({ service: '' }, { requestId: 'r1' }), { status: SERVING });
  await assert.rejects(client.check({ service: 'missing' }, { requestId: 'r2' }), (err) => err instanceof StevedoreError && err.kind === 'notFound' && err.message === 'No such service: missing');
});

test('a service that cannot be reached fails within the deadline, named', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'typed-grpc-'));
  const client = connectService(health.HealthService, loadConfig({ STEVEDORE_EVENTS_ADDR: `unix:${path.join(dir, 'nobody.sock')}` }), 'events');
  try {
    const started = Date.now();
    await assert.rejects(client.check({ service: '' }, { requestId: 'r3', timeoutMs: 300 }), (err) => err instanceof StevedoreError && err.kind === 'unavailable' && /^Cannot reach the events service/.test(err.message));
    assert.ok(Date.now() - started < 5000);
  } finally {
    client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a signal cancels a stream, and a call that ended leaves no listener on it', async (t) => {
  const client = await pair(t);
  const controller = new AbortController();
  await client.check({ service: '' }, { requestId: 'r4', signal: controller.signal });
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'the finished call took its listener away');
  const stream = client.watch({ service: '' }, { requestId: 'r5', signal: controller.signal });
  const first = await new Promise((resolve) => stream.once('data', resolve));
  assert.deepEqual(first, { status: SERVING });
  const ended = new Promise<grpc.StatusObject>((resolve) => stream.once('status', resolve));
  stream.on('error', () => undefined);
  controller.abort();
  assert.equal((await ended).code, grpc.status.CANCELLED);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});
