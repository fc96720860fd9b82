import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ShimConnection } from '@stevedore/contracts';
import { containerId, testRuntime, type FakeImage } from './test-runtime';

const busybox: FakeImage = { id: 'b'.repeat(64), names: ['busybox:latest'], layers: [] };

test('the monitor\'s connection closing records the exit from exit.json, sends its die through the outbox and answers wait', async () => {
  const rt = testRuntime([busybox]);
  const id = containerId('c1');
  const server = net.createServer();
  try {
    rt.record(id, '/job', busybox, 'running');
    const state = rt.paths.stateDir(id);
    fs.mkdirSync(state, { recursive: true });
    // The monitor's side: its socket, and the exit it writes before closing it.
    const closed = new Promise<net.Socket>((resolve) => server.on('connection', resolve));
    await new Promise<void>((resolve) => server.listen(rt.paths.attachSocket(id), resolve));
    rt.exits.watch(id, await ShimConnection.connect(rt.paths.attachSocket(id)));
    assert.ok(rt.exits.isWatched(id));
    const waited = rt.exits.wait('job');
    fs.writeFileSync(rt.paths.exitFile(id), JSON.stringify({ exitCode: 3, finishedAt: '2024-05-06T07:08:09Z' }));
    (await closed).destroy();

    assert.equal(await waited, 3);
    const row = rt.db.get(id)!;
    assert.equal(row.status, 'exited');
    assert.equal(row.exit_code, 3);
    assert.equal(rt.exits.isWatched(id), false);
    assert.equal(fs.existsSync(state), false, 'the monitor\'s state is gone');
    assert.deepEqual(rt.store.requests('useImage'), [{ image: busybox.id, user: id, running: false, node: '', byDigest: false }]);
    const events = await rt.events();
    assert.deepEqual(events.map((e) => [e.action, e.id, e.attributes?.exitCode]), [['die', id, '3']]);
    assert.deepEqual(rt.db.queuedEvents(), [], 'the outbox kept nothing once the log took it');
  } finally {
    server.close();
    await rt.dispose();
  }
});

test('a monitor gone without recording the exit: 137, the OCI runtime state deleted, and one die however often it is reported', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('c2');
    rt.record(id, '/lost', busybox, 'running');
    await Promise.all([rt.exits.exited(id), rt.exits.exited(id)]);
    await rt.exits.exited(id);
    assert.equal(rt.db.get(id)?.exit_code, 137);
    assert.deepEqual(rt.runner.commands, [['delete', '--force', id]]);
    assert.deepEqual((await rt.events()).map((e) => [e.action, e.attributes?.exitCode]), [['die', '137']]);
  } finally {
    await rt.dispose();
  }
});

test('an exit takes a bridged container off the bridge, and inspect shows it without an address', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('c3');
    rt.record(id, '/web', busybox, 'running');
    rt.db.setNetworkAndPorts(
      { container_id: id, ip_address: '172.30.0.5', ip_prefix_len: 16, gateway: '172.30.0.1', mac_address: '02:42:ac:1e:00:05', bridge: 'sd0' },
      [{ container_id: id, container_port: 80, protocol: 'tcp', host_ip: '', host_port: 49153 }],
    );
    assert.equal(rt.queries.inspect('web').network?.ipAddress, '172.30.0.5');
    assert.deepEqual(rt.queries.inspect('web').ports, [{ containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 49153 }]);
    await rt.exits.exited(id);
    assert.deepEqual(rt.bridgeCalls, [`revoke ${id}`, `detach ${id}`]);
    assert.equal(rt.db.network(id), undefined);
    assert.deepEqual(rt.db.ports(id), []);
    const inspected = rt.queries.inspect('web');
    assert.equal(inspected.network, undefined);
    assert.deepEqual(inspected.ports, []);
    // The host port is free again for the next container.
    assert.deepEqual([...rt.db.takenPorts()], []);
  } finally {
    await rt.dispose();
  }
});
