import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWarnings, WARNINGS } from './create-warnings';

const able = { version: '2' as const, memoryLimit: true, swapLimit: true, ipv4Forwarding: true };

test('PortSpecs become exposed ports; a host mapping in them only warns', () => {
  const config = { Image: 'x', PortSpecs: ['22', '53/udp', '8080:80', '127.0.0.1:5000:5000/tcp'] };
  assert.deepEqual(createWarnings(config, able), [WARNINGS.portSpecs]);
  assert.deepEqual(config, { Image: 'x', PortSpecs: null, ExposedPorts: { '22/tcp': {}, '53/udp': {}, '80/tcp': {}, '5000/tcp': {} } });
  const plain = { PortSpecs: ['22'] };
  assert.deepEqual(createWarnings(plain, able), []);
  assert.throws(() => createWarnings({ PortSpecs: ['http'] }, able), /Invalid port specification: http/);
});

test('limits the kernel cannot apply are discarded with a warning; forwarding off warns unless networking is off', () => {
  const noMemory = { Memory: 64 * 1024 * 1024 };
  assert.deepEqual(createWarnings(noMemory, { ...able, memoryLimit: false, swapLimit: false }), [WARNINGS.memory]);
  assert.equal(noMemory.Memory, 0);
  const noSwap: { Memory: number; MemorySwap?: number } = { Memory: 64 * 1024 * 1024 };
  assert.deepEqual(createWarnings(noSwap, { ...able, swapLimit: false }), [WARNINGS.swap]);
  assert.equal(noSwap.MemorySwap, -1);
  assert.deepEqual(createWarnings({}, { ...able, ipv4Forwarding: false }), [WARNINGS.forwarding]);
  assert.deepEqual(createWarnings({ NetworkDisabled: true }, { ...able, ipv4Forwarding: false }), []);
});
