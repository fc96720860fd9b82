import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containers } from '@stevedore/contracts';
import { commandText, toContainerInspectV1_0, toContainerInspectV1_12, toContainerListV1_0, toContainerListV1_5 } from './container-shapes';

const ID = 'a'.repeat(64);
const container = (over: Partial<containers.Container> = {}): containers.Container =>
  containers.Container.fromPartial({
    id: ID,
    name: '/web',
    created: '2026-11-28T00:00:00.000000000Z',
    path: 'sh',
    args: ['-c', 'sleep 1'],
    configJson: JSON.stringify({ Image: 'busybox', ExposedPorts: { '80/tcp': {} } }),
    hostConfigJson: '',
    state: { running: false, paused: false, pid: 0, exitCode: 0, startedAt: '', finishedAt: '', neverStarted: true },
    ...over,
  });

test('Command: an argument with a space in single quotes; a " or \\ gives what Docker 1.0 read back from "<text>"', () => {
  assert.equal(commandText(container()), "sh -c 'sleep 1'");
  // The wrapping quotes leak when the text is not a JSON string body...
  assert.equal(commandText(container({ args: ['-c', 'echo "hi"'] })), `"sh -c 'echo "hi"'"`);
  assert.equal(commandText(container({ args: ['a\\q'] })), '"sh a\\q"');
  // ...and a JSON escape in it is read as one.
  assert.equal(commandText(container({ args: ['a\\tb'] })), 'sh a\tb');
});

test('HostConfig: only Docker 1.0\'s keys, in its order; LxcConf in the object form is ignored', () => {
  const hostConfigJson = JSON.stringify({ AutoRemove: true, Links: ['/db:db'], Binds: ['/tmp:/mnt'], LxcConf: { 'lxc.utsname': 'x' }, Memory: 5 });
  const h = toContainerInspectV1_0(container({ hostConfigJson })).HostConfig;
  assert.deepEqual(Object.keys(h), ['Binds', 'ContainerIDFile', 'LxcConf', 'Privileged', 'PortBindings', 'Links', 'PublishAllPorts', 'Dns', 'DnsSearch', 'VolumesFrom', 'NetworkMode']);
  assert.equal(h.LxcConf, null);
  assert.deepEqual(h.Binds, ['/tmp:/mnt']);
  const list = [{ Key: 'lxc.utsname', Value: 'x' }];
  assert.deepEqual(toContainerInspectV1_0(container({ hostConfigJson: JSON.stringify({ LxcConf: list }) })).HostConfig.LxcConf, list);
});

test('NetworkSettings: the structure\'s order before v1.12, sorted from v1.12; Ports null without a network', () => {
  const stopped = toContainerInspectV1_0(container()).NetworkSettings;
  assert.deepEqual(Object.keys(stopped), ['IPAddress', 'IPPrefixLen', 'Gateway', 'Bridge', 'PortMapping', 'Ports']);
  assert.equal(stopped.Ports, null);
  const running = container({
    state: { running: true, paused: false, pid: 9, exitCode: 0, startedAt: '2026-11-28T00:00:01Z', finishedAt: '', neverStarted: false },
    network: { bridge: 'sd0', gateway: '10.0.0.1', ipAddress: '10.0.0.2', ipPrefixLen: 24, macAddress: '' },
  });
  assert.deepEqual(toContainerInspectV1_0(running).NetworkSettings.Ports, { '80/tcp': null });
  const v112 = toContainerInspectV1_12(running) as unknown as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(v112.NetworkSettings), ['Bridge', 'Gateway', 'IPAddress', 'IPPrefixLen', 'PortMapping', 'Ports']);
  // Every nested object sorted at v1.12 (State, HostConfig, Config), as the 1.0 daemon's key/value type re-sorted them.
  for (const key of ['State', 'HostConfig', 'Config', 'NetworkSettings']) {
    const keys = Object.keys(v112[key]);
    assert.deepEqual(keys, [...keys].sort(), key);
  }
  assert.deepEqual(Object.keys(v112), [...Object.keys(v112)].sort());
});

test('a list entry with sizes keeps the sorted order: SizeRootFs and SizeRw before Status', () => {
  const e = toContainerListV1_5(container({ sizeRw: 1, sizeRootFs: 2 }), true);
  assert.deepEqual(Object.keys(e), ['Command', 'Created', 'Id', 'Image', 'Names', 'Ports', 'SizeRootFs', 'SizeRw', 'Status']);
  assert.deepEqual(Object.keys(toContainerListV1_5(container(), false)), ['Command', 'Created', 'Id', 'Image', 'Names', 'Ports', 'Status']);
});

test('the legacy Ports string before v1.5: unpublished first, then by public port, joined by ", "', () => {
  const c = container({
    configJson: JSON.stringify({ Image: 'busybox', ExposedPorts: { '80/tcp': {}, '81/tcp': {}, '53/udp': {} } }),
    state: { running: true, paused: false, pid: 9, exitCode: 0, startedAt: '2026-11-28T00:00:01Z', finishedAt: '', neverStarted: false },
    network: { bridge: 'sd0', gateway: '10.0.0.1', ipAddress: '10.0.0.2', ipPrefixLen: 24, macAddress: '' },
    ports: [
      { containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 49200 },
      { containerPort: 81, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8081 },
    ],
  });
  assert.equal(toContainerListV1_0(c, false).Ports, '53/udp, 127.0.0.1:8081->81/tcp, 0.0.0.0:49200->80/tcp');
  assert.equal(toContainerListV1_0(container(), false).Ports, '', 'not on the bridge: no ports');
});
