import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventJson } from './event-shape';

const base = { type: 'container', action: 'start', id: 'c'.repeat(64), from: 'busybox:latest', timeMs: 1796322000123, logId: '1796322000123-0' };

test('an event of a single host: Docker 1.0\'s keys and today\'s, no node', () => {
  const e = JSON.parse(eventJson({ ...base, attributes: { name: 'web' } }));
  assert.equal(e.from, 'busybox:latest');
  assert.equal(e.node, undefined);
  assert.equal(e.timeNano, 1796322000123000000);
});

test('an event of a cluster\'s node names it as Swarm classic did', () => {
  const text = eventJson({ ...base, attributes: { name: 'web', 'node.name': 'node-2', 'node.addr': '10.214.7.12' } });
  const e = JSON.parse(text);
  assert.equal(e.from, 'busybox:latest node:node-2');
  assert.deepEqual(e.node, { Name: 'node-2', Id: 'node-2', Addr: '10.214.7.12', Ip: '10.214.7.12' });
  assert.equal(e.Actor.Attributes['node.name'], 'node-2');
});
