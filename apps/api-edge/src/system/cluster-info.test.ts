import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Member } from '@stevedore/cluster';
import { binarySize } from '@stevedore/docker-api';
import { clusterDriverStatus, clusterTotals } from './cluster-info';

function member(name: string, up: boolean, running: number): Member {
  return {
    name, address: `10.0.0.${name.slice(-1)}`, runtime: '', cpus: 2, memoryBytes: 1024, labels: { z: '1', a: 'b' }, joinedAt: '',
    up, counts: up ? { containers: running + 1, running, paused: 0 } : { containers: 0, running: 0, paused: 0 }, beatAt: up ? '2026-12-03T19:00:00.000Z' : '',
  };
}

test('info of a cluster: Swarm classic\'s DriverStatus, node by node, and totals over the nodes that are up', () => {
  const members = [member('node-1', true, 2), member('node-2', false, 0)];
  assert.deepEqual(clusterDriverStatus(members, 'spread'), [
    ['\bStrategy', 'spread'], ['\bFilters', 'health, dependency, affinity, constraint'], ['\bNodes', '2'],
    ['node-1', '10.0.0.1'], [' └ Status', 'Healthy'], [' └ Containers', '3'], [' └ CPUs', '2'], [' └ Memory', '1 KiB'], [' └ Labels', 'a=b, z=1'], [' └ Error', '(none)'], [' └ UpdatedAt', '2026-12-03T19:00:00.000Z'],
    ['node-2', '10.0.0.2'], [' └ Status', 'Unhealthy'], [' └ Containers', '0'], [' └ CPUs', '2'], [' └ Memory', '1 KiB'], [' └ Labels', 'a=b, z=1'], [' └ Error', 'no heartbeat for more than 5 s'], [' └ UpdatedAt', ''],
  ]);
  assert.deepEqual(clusterTotals(members), { containers: 3, running: 2, paused: 0, stopped: 1, cpus: 2, memoryBytes: 1024 });
});

test('sizes as Swarm wrote them', () => {
  assert.equal(binarySize(2027224064), '1.888 GiB');
  assert.equal(binarySize(512), '512 B');
});
