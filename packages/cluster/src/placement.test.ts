import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Member } from './membership';
import { chooseNode, PlacementError, takeFilters, valueMatches, type PlacementRequest } from './placement';

function member(name: string, labels: Record<string, string> = {}, up = true): Member {
  return { name, address: '', runtime: '', cpus: 1, memoryBytes: 1, labels, joinedAt: '', up, counts: { containers: 0, running: 0, paused: 0 }, beatAt: '' };
}

const nodes = [member('node-1', { storage: 'ssd' }), member('node-2', { storage: 'disk', region: 'r2' }), member('node-3', {}, true)];

function request(over: Partial<PlacementRequest> = {}, active: Record<string, number> = {}): PlacementRequest {
  return {
    filters: [], strategy: 'spread',
    containersOn: (n) => (n === 'node-2' ? [{ name: 'redis', id: 'abc123' }] : []),
    imagesOn: (n) => (n === 'node-3' ? ['busybox:latest', 'f00d'] : []),
    active: (n) => active[n] ?? 0,
    ...over,
  };
}

test('filters are taken out of the environment; a malformed one is refused', () => {
  const { env, filters } = takeFilters(['A=1', 'constraint:node==node-2', 'affinity:image!=~busybox', 'constraint:storage==/ss.*/']);
  assert.deepEqual(env, ['A=1']);
  assert.deepEqual(filters.map((f) => [f.kind, f.key, f.negate, f.soft, f.value]), [['constraint', 'node', false, false, 'node-2'], ['affinity', 'image', true, true, 'busybox'], ['constraint', 'storage', false, false, '/ss.*/']]);
  assert.throws(() => takeFilters(['constraint:node=node-2']), PlacementError);
  assert.throws(() => takeFilters(['affinity:volume==x']), /names a container or an image/);
  assert.ok(valueMatches('node-*', 'node-12') && !valueMatches('node-*', 'xnode-1') && valueMatches('/^n.*2$/', 'node-2'));
});

test('spread takes the node with the fewest active containers (then by name); binpack the most', () => {
  assert.equal(chooseNode(nodes, request({}, { 'node-1': 2, 'node-2': 1, 'node-3': 1 })).name, 'node-2');
  assert.equal(chooseNode(nodes, request({ strategy: 'binpack' }, { 'node-1': 2, 'node-2': 1 })).name, 'node-1');
});

test('constraints on the node name and labels, affinities to containers and images; refused with Swarm\'s words when impossible', () => {
  const with_ = (env: string[], active: Record<string, number> = {}) => chooseNode(nodes, request({ filters: takeFilters(env).filters }, active)).name;
  assert.equal(with_(['constraint:node==node-3']), 'node-3');
  assert.equal(with_(['constraint:node!=node-1'], { 'node-2': 5 }), 'node-3');
  assert.equal(with_(['constraint:storage==ssd'], { 'node-1': 9 }), 'node-1');
  assert.equal(with_(['affinity:container==redis'], { 'node-2': 9 }), 'node-2');
  assert.equal(with_(['affinity:container==abc123'], { 'node-2': 9 }), 'node-2');
  assert.equal(with_(['affinity:image==busybox'], { 'node-3': 9 }), 'node-3');
  assert.equal(with_(['constraint:region==~r9'], { 'node-1': 1, 'node-2': 1 }), 'node-3', 'a preference that no node meets is dropped');
  assert.throws(() => with_(['constraint:node==node-9']), /^Error: unable to find a node that satisfies node==node-9$/);
  assert.throws(() => with_(['constraint:storage==ssd', 'constraint:region==r2']), /unable to find a node that satisfies region==r2/);
});

test('a required node (what the container needs is there); down nodes never chosen', () => {
  assert.equal(chooseNode(nodes, request({ requiredNode: 'node-2' }, { 'node-2': 9 })).name, 'node-2');
  const down = [member('node-1', {}, false), member('node-2')];
  assert.equal(chooseNode(down, request()).name, 'node-2');
  assert.throws(() => chooseNode(down, request({ requiredNode: 'node-1' })), /dependencies/);
  assert.throws(() => chooseNode([member('node-1', {}, false)], request()), /No healthy node available in the cluster/);
});

test('a hostile filter value cannot stall the edge: globs match in linear time, explosive regexps and overlong values are refused', () => {
  const name = 'a'.repeat(5000);
  const started = Date.now();
  assert.equal(valueMatches('*a*a*a*a*a*a*a*a*a*b', name), false);
  assert.equal(valueMatches('*a*a*a*a*a*a*a*a*a*a', name), true);
  assert.ok(Date.now() - started < 100, 'bounded time');
  assert.throws(() => takeFilters(['affinity:container==/(a+)+$/']), /repeated group/);
  assert.throws(() => takeFilters(['affinity:container==/(a)\\1/']), /backreference/);
  // Many quantifiers in a row: matching time grows as the length to their number (13 s for 20 of them on a 13-character name).
  assert.throws(() => takeFilters([`constraint:node==/^${'.*'.repeat(20)}x$/`]), /at most 2 quantifiers/);
  assert.throws(() => takeFilters(['constraint:node==/a+b*c?/']), /at most 2 quantifiers/);
  assert.throws(() => takeFilters(['constraint:node==/a{2}b{3}c{4}/']), /at most 2 quantifiers/);
  assert.equal(takeFilters(['constraint:node==/^node-.*x?$/', 'constraint:node==/(?:n)[+]\\+/']).filters.length, 2, 'two quantifiers; an escaped one and a (? group are none');
  assert.throws(() => takeFilters([`constraint:node==${'x'.repeat(300)}`]), /limited to 256/);
  assert.throws(() => takeFilters(Array.from({ length: 17 }, (_, i) => `constraint:k${i}==v`)), /at most 16/);
  assert.ok(valueMatches('node-*-x', 'node-12-x') && !valueMatches('node-*-x', 'node-12-y') && valueMatches('a*', 'a') && !valueMatches('ab*ba', 'aba'));
});
