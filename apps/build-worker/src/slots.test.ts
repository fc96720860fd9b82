import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Slots } from './slots';

test('at most `size` at once; told when full and when a slot is free again; waiters served in order', async () => {
  const told: boolean[] = [];
  const slots = new Slots(2, (full) => told.push(full));
  await slots.take();
  await slots.take();
  assert.deepEqual(told, [true]);
  const order: number[] = [];
  const third = slots.take().then(() => order.push(3));
  const fourth = slots.take().then(() => order.push(4));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], 'both wait');
  slots.give();
  await third;
  assert.deepEqual(told, [true], 'a slot handed on directly: still full');
  slots.give();
  await fourth;
  assert.deepEqual(order, [3, 4]);
  slots.give();
  assert.deepEqual(told, [true, false], 'free again');
  slots.give();
  await slots.take();
  assert.deepEqual(told, [true, false]);
});
