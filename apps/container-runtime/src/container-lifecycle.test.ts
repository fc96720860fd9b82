import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { containerId, testRuntime, type FakeImage, type TestRuntime } from './test-runtime';

const busybox: FakeImage = { id: 'b'.repeat(64), names: ['busybox:latest'], layers: ['/layers/1'], config: { Cmd: ['sh'], Env: ['PATH=/bin', 'HOME=/'] } };
const noCommand: FakeImage = { id: 'c'.repeat(64), names: ['scratchy:latest'], layers: ['/layers/2'] };

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

test('create refuses an unknown image with Docker\'s words, records nothing and ends its change of image use', async () => {
  const rt = testRuntime([busybox]);
  try {
    await assert.rejects(rt.lifecycle.create({ name: 'web', configJson: JSON.stringify({ Image: 'nosuch' }), hostConfigJson: '' }, 'r1'), (err: Error & { kind?: string }) => {
      assert.equal(err.message, 'No such image: nosuch (tag: latest)');
      assert.equal(err.kind, 'notFound');
      return true;
    });
    assert.deepEqual(rt.db.all(), []);
    assert.deepEqual(fs.readdirSync(rt.paths.root).filter((f) => f !== 'containers.db' && !f.startsWith('containers.db-')), []);
    // A reconciliation waits for changes in progress: it runs only if the create's change ended.
    rt.containerImages.start();
    for (let i = 0; i < 50 && rt.store.accounts.length === 0; i++) await tick();
    assert.deepEqual(rt.store.accounts, [[]]);
    assert.deepEqual((await rt.events()).map((e) => e.action), []);
  } finally {
    await rt.dispose();
  }
});

test('create records the container on the image\'s config under the user\'s, and announces it', async () => {
  const rt = testRuntime([busybox]);
  try {
    const { id, warnings } = await rt.lifecycle.create({ name: 'web', configJson: JSON.stringify({ Image: 'busybox', Env: ['HOME=/root'] }), hostConfigJson: '' }, 'r1');
    assert.deepEqual(warnings, []);
    const row = rt.db.get(id)!;
    assert.equal(row.name, '/web');
    assert.equal(row.status, 'created');
    assert.equal(row.image_id, busybox.id);
    const config = JSON.parse(row.config);
    assert.deepEqual(config.Cmd, ['sh']);
    assert.deepEqual(config.Env, ['PATH=/bin', 'HOME=/root']);
    assert.ok(fs.statSync(rt.paths.dir(id)).isDirectory());
    assert.deepEqual(rt.store.uses.get(id), { image: busybox.id, running: false });
    const events = await rt.events();
    assert.deepEqual(events.map((e) => [e.action, e.id, e.attributes?.name]), [['create', id, 'web']]);

    // The same name again: 409, and the image store holds no use for the refused one.
    await assert.rejects(rt.lifecycle.create({ name: 'web', configJson: JSON.stringify({ Image: 'busybox' }), hostConfigJson: '' }, 'r2'), /The name web is already assigned to/);
    assert.equal(rt.db.all().length, 1);
    assert.equal(rt.store.uses.size, 1);
  } finally {
    await rt.dispose();
  }
});

test('a create refused after the image was found releases the image and leaves no directory', async () => {
  const rt = testRuntime([noCommand]);
  try {
    await assert.rejects(rt.lifecycle.create({ name: '', configJson: JSON.stringify({ Image: 'scratchy' }), hostConfigJson: '' }, 'r1'), /No command specified/);
    const [used] = rt.store.requests('useImage') as Array<{ user: string }>;
    assert.deepEqual(rt.store.requests('releaseImage'), [{ user: used.user }]);
    assert.equal(rt.store.uses.size, 0);
    assert.equal(fs.existsSync(rt.paths.dir(used.user)), false);
    assert.deepEqual(rt.db.all(), []);
  } finally {
    await rt.dispose();
  }
});

test('remove of a running container without force is refused, and nothing is deleted', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('a1');
    rt.record(id, '/web', busybox, 'running');
    await assert.rejects(rt.lifecycle.remove({ id: 'web', force: false, volumes: true }, 'r1'), (err: Error & { kind?: string }) => {
      assert.equal(err.kind, 'notAllowed');
      assert.match(err.message, /Impossible to remove a running container, please stop it first or use -f/);
      return true;
    });
    assert.equal(rt.db.get(id)?.status, 'running');
    assert.ok(fs.existsSync(rt.paths.dir(id)));
    assert.deepEqual(rt.runner.commands, []);
    assert.deepEqual(rt.store.requests('releaseImage'), []);
    assert.deepEqual((await rt.events()).map((e) => e.action), []);
  } finally {
    await rt.dispose();
  }
});

test('remove -v of a stopped container deletes its record, its directory and its data volumes, releases its image and says destroy', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('a2');
    rt.record(id, '/old', busybox, 'exited');
    const volume = path.join(rt.paths.volumes, 'v1');
    const bind = path.join(rt.dir, 'bind');
    fs.mkdirSync(volume);
    fs.mkdirSync(bind);
    rt.db.setVolumes([
      { container_id: id, path: '/data', host_path: volume, rw: 1, managed: 1 },
      { container_id: id, path: '/host', host_path: bind, rw: 1, managed: 0 },
    ]);
    await rt.lifecycle.remove({ id: id.slice(0, 12), force: false, volumes: true }, 'r1');
    assert.equal(rt.db.get(id), undefined);
    assert.equal(fs.existsSync(rt.paths.dir(id)), false);
    assert.equal(fs.existsSync(volume), false);
    assert.ok(fs.existsSync(bind), 'a bind of the host stays');
    assert.deepEqual(rt.store.requests('releaseImage'), [{ user: id }]);
    assert.deepEqual((await rt.events()).map((e) => [e.action, e.id]), [['destroy', id]]);
    await assert.rejects(rt.lifecycle.remove({ id, force: false, volumes: false }, 'r2'), /No such container/);
  } finally {
    await rt.dispose();
  }
});

test('kill -9 signals the container, waits for its exit to be recorded, then says die and kill', async () => {
  const rt: TestRuntime = testRuntime([busybox], {
    // The container's side: its monitor records the exit and its connection closes.
    onKill: (id, signal) => {
      fs.mkdirSync(rt.paths.stateDir(id), { recursive: true });
      fs.writeFileSync(rt.paths.exitFile(id), JSON.stringify({ exitCode: 128 + signal, finishedAt: '2024-01-02T03:04:05Z' }));
      void rt.exits.exited(id);
    },
  });
  try {
    const id = containerId('a3');
    rt.record(id, '/victim', busybox, 'running');
    await rt.lifecycle.kill({ id: 'victim', signal: 'KILL' });
    assert.deepEqual(rt.runner.commands, [['kill', id, '9']]);
    const row = rt.db.get(id)!;
    assert.equal(row.status, 'exited');
    assert.equal(row.exit_code, 137);
    assert.equal(row.finished_at, '2024-01-02T03:04:05Z');
    assert.deepEqual((await rt.events()).map((e) => [e.action, e.attributes?.exitCode]), [['die', '137'], ['kill', undefined]]);
    assert.equal(await rt.exits.wait('victim'), 137);
  } finally {
    await rt.dispose();
  }
});

test('kill refuses an unknown signal, and a stopped or paused container is not signalled', async () => {
  const rt = testRuntime([busybox]);
  try {
    rt.record(containerId('a4'), '/stopped', busybox, 'exited');
    const paused = containerId('a5');
    rt.record(paused, '/paused', busybox, 'running');
    rt.db.setPaused(paused, true);
    await assert.rejects(rt.lifecycle.kill({ id: 'stopped', signal: 'SIGNOPE' }), /Invalid signal: SIGNOPE/);
    await rt.lifecycle.kill({ id: 'stopped', signal: 'TERM' });
    await assert.rejects(rt.lifecycle.stop({ id: 'paused', timeout: 1 }), new RegExp(`Container ${paused} is paused. Unpause the container before stopping`));
    await assert.rejects(rt.lifecycle.kill({ id: 'paused', signal: '' }), /is paused/);
    assert.deepEqual(rt.runner.commands, []);
  } finally {
    await rt.dispose();
  }
});

test('pause and unpause go through the OCI runtime, are recorded and announced; a second pause is refused', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('a6');
    rt.record(id, '/app', busybox, 'running');
    await rt.lifecycle.pause('app', true);
    assert.equal(rt.db.get(id)?.paused, 1);
    await assert.rejects(rt.lifecycle.pause('app', true), /is already paused/);
    await rt.lifecycle.pause('app', false);
    assert.equal(rt.db.get(id)?.paused, 0);
    assert.deepEqual(rt.runner.commands, [['pause', id], ['resume', id]]);
    assert.deepEqual((await rt.events()).map((e) => e.action), ['pause', 'unpause']);
    await assert.rejects(rt.lifecycle.pause(id, false), /is not paused/);
  } finally {
    await rt.dispose();
  }
});

test('rm --link removes the name a link gave, never a container\'s own name', async () => {
  const rt = testRuntime([busybox]);
  try {
    const parent = containerId('b1');
    const child = containerId('b2');
    rt.record(parent, '/web', busybox, 'running');
    rt.record(child, '/db', busybox, 'running');
    rt.db.setLink(parent, 'database', child);
    assert.deepEqual(rt.db.linkNames(child), ['/web/database']);
    assert.throws(() => rt.lifecycle.removeLink('/db'), /cannot remove the default name/);
    rt.lifecycle.removeLink('/web/database');
    assert.deepEqual(rt.db.linkNames(child), []);
    assert.throws(() => rt.lifecycle.removeLink('/web/database'), /No such link: \/web\/database/);
  } finally {
    await rt.dispose();
  }
});
