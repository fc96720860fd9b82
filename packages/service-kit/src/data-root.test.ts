import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '@stevedore/config';
import { dockerGroupId, privateDatabase, secureDataRoot, serviceUmask, socketPathDirs } from './data-root';

const mode = (p: string): number => fs.statSync(p).mode & 0o7777;

test('the directories on the way to an API socket inside the root, and none for a socket elsewhere', () => {
  const root = '/srv/sd';
  const config = (host: string) => loadConfig({ STEVEDORE_ROOT: root, STEVEDORE_HOST: host });
  assert.deepEqual(socketPathDirs(loadConfig({ STEVEDORE_ROOT: root })), [root]);
  assert.deepEqual(socketPathDirs(config('unix:///srv/sd/api/x/docker.sock')), [root, '/srv/sd/api', '/srv/sd/api/x']);
  assert.deepEqual(socketPathDirs(config('unix:///run/stevedore.sock,unix:///srv/sdx/a.sock')), []);
  assert.deepEqual(socketPathDirs(config('tcp://127.0.0.1:2376')), []);
});

test('a root left wide is tightened: 0710 with the group docker for the socket inside it, 0700 below, files 0600', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-root-'));
  try {
    for (const d of ['images', 'logs', 'mine']) fs.mkdirSync(path.join(root, d), { mode: 0o755 });
    fs.chmodSync(root, 0o755);
    fs.writeFileSync(path.join(root, 'engine-id'), 'x\n', { mode: 0o644 });
    fs.writeFileSync(path.join(root, 'images', 'images.db-wal'), '', { mode: 0o644 });
    secureDataRoot(loadConfig({ STEVEDORE_ROOT: root }), ['run']);
    const gid = dockerGroupId();
    assert.equal(mode(root), gid === undefined ? 0o700 : 0o710);
    for (const d of ['images', 'logs', 'run']) assert.equal(mode(path.join(root, d)), 0o700, d);
    assert.equal(mode(path.join(root, 'mine')), 0o755, 'what Stevedore did not make is left alone');
    assert.ok(!fs.existsSync(path.join(root, 'containers')), 'only what a caller asks for is made');
    assert.equal(mode(path.join(root, 'engine-id')), 0o600);
    privateDatabase(path.join(root, 'images', 'images.db'));
    assert.equal(mode(path.join(root, 'images', 'images.db')), 0o600);
    assert.equal(mode(path.join(root, 'images', 'images.db-wal')), 0o600);
    // A socket elsewhere: the root needs no group.
    secureDataRoot(loadConfig({ STEVEDORE_ROOT: root, STEVEDORE_HOST: 'unix:///run/elsewhere.sock' }));
    assert.equal(mode(root), 0o700);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('only the services that write image and container content keep 022', () => {
  assert.equal(serviceUmask('image-store'), 0o022);
  assert.equal(serviceUmask('container-runtime'), 0o022);
  for (const name of ['api-edge', 'events', 'build-worker']) assert.equal(serviceUmask(name), 0o077, name);
});
