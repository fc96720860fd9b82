import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { images } from '@stevedore/contracts';
import type { Logger } from '@stevedore/logging';
import { ImageUseReconciler, type ImageUseCalls } from './image-use';

const quiet = { info() {}, warn() {}, debug() {}, error() {} } as unknown as Logger;

/** A store that is always ready and records the accounts it was sent. */
function fakeStore() {
  const received: images.ImageUse[][] = [];
  let answer: () => void = () => undefined;
  let hold = false;
  const client: ImageUseCalls = {
    connection: {
      getChannel: () => ({ getConnectivityState: () => grpc.connectivityState.READY, watchConnectivityState: () => undefined }),
      waitForReady: (_deadline, cb) => cb(),
    },
    reconcileImageUse: (req) =>
      new Promise((resolve) => {
        received.push(req.uses);
        const reply = () => resolve({ unknownImages: [], added: 0, dropped: 0 });
        if (hold) answer = reply;
        else reply();
      }),
  };
  return { client, received, holdAnswers: () => (hold = true), answer: () => answer() };
}

const tick = () => new Promise((r) => setTimeout(r, 10));

test('a reconciliation waits for the change in progress: a use the store just recorded is in its account', async () => {
  const store = fakeStore();
  const records: images.ImageUse[] = [];
  const reconciler = new ImageUseReconciler(store.client, () => [...records], quiet);
  // create: the store records the use, then the container's record is written.
  let writeRecord!: () => void;
  const create = reconciler.change(async () => {
    await new Promise<void>((r) => (writeRecord = r));
    records.push({ user: 'c1', image: 'i1', running: false });
  });
  reconciler.request();
  await tick();
  assert.equal(store.received.length, 0, 'no account taken half-way through a create');
  writeRecord();
  await create;
  await tick();
  assert.deepEqual(store.received, [[{ user: 'c1', image: 'i1', running: false }]]);
  reconciler.close();
});

test('a change begun during a reconciliation waits for it: a release is never undone by an older account', async () => {
  const store = fakeStore();
  store.holdAnswers();
  const records: images.ImageUse[] = [{ user: 'c1', image: 'i1', running: false }];
  const reconciler = new ImageUseReconciler(store.client, () => [...records], quiet);
  reconciler.request();
  await tick();
  assert.equal(store.received.length, 1, 'the account is on its way');
  const order: string[] = [];
  // rm: the record goes, then the release is sent.
  records.length = 0;
  const release = reconciler.change(async () => void order.push('release'));
  await tick();
  assert.deepEqual(order, [], 'the release waits for the reconciliation in flight');
  store.answer();
  await release;
  assert.deepEqual(order, ['release']);
  reconciler.close();
});

test('requests during a reconciliation are coalesced into one more', async () => {
  const store = fakeStore();
  store.holdAnswers();
  const reconciler = new ImageUseReconciler(store.client, () => [], quiet);
  reconciler.request();
  await tick();
  reconciler.request();
  reconciler.request();
  store.answer();
  await tick();
  store.answer();
  await tick();
  assert.equal(store.received.length, 2);
  reconciler.close();
});
