import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sameBuildConfig } from './build-cache';

test('the cache compares the fields Docker 1.0 compared, and no others', () => {
  const base = { Cmd: ['/bin/sh', '-c', 'make'], Env: ['A=1', 'B=2'], ExposedPorts: { '80/tcp': {} }, Volumes: { '/data': {} }, User: 'app' };
  assert.ok(sameBuildConfig(base, { ...base, Hostname: 'other', WorkingDir: '/elsewhere', Image: 'x', OnBuild: ['RUN y'] }));
  assert.ok(sameBuildConfig(base, { ...base, ExposedPorts: { '80/tcp': { x: 1 } } }), 'port sets compared by key');
  assert.ok(!sameBuildConfig(base, { ...base, Cmd: ['/bin/sh', '-c', 'make install'] }));
  assert.ok(!sameBuildConfig(base, { ...base, Env: ['B=2', 'A=1'] }), 'Env order matters');
  assert.ok(!sameBuildConfig(base, { ...base, Volumes: {} }));
  assert.ok(!sameBuildConfig(base, { ...base, User: 'root' }));
  assert.ok(!sameBuildConfig(base, { ...base, Entrypoint: ['/init'] }));
  assert.ok(!sameBuildConfig({ ...base, OpenStdin: true }, { ...base, OpenStdin: true }), 'OpenStdin never matches');
  assert.ok(sameBuildConfig({ Cmd: ['x'], Env: null }, { Cmd: ['x'] }), 'absent and empty are the same');
});
