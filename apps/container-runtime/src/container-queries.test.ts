import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dirSize } from './container-queries';
import { containerId, testRuntime, type FakeImage } from './test-runtime';

const busybox: FakeImage = { id: 'b'.repeat(64), names: ['busybox:latest'], layers: [], virtualSize: 1000 };
const unnamed: FakeImage = { id: 'd'.repeat(64), names: [], layers: [] };

/** Five containers, oldest first: c-one (exited) ... c-five (running). */
function fiveContainers(rt: ReturnType<typeof testRuntime>): string[] {
  const statuses = ['exited', 'running', 'exited', 'running', 'created'] as const;
  return ['one', 'two', 'three', 'four', 'five'].map((n, i) => rt.record(containerId(`e${i}`), `/c-${n}`, i === 2 ? unnamed : busybox, statuses[i], { Entrypoint: ['/bin/sh'], Cmd: ['-c', n] }).name);
}

test('list: running ones by default, newest first; limit, since and before as Docker 1.0 took them', async () => {
  const rt = testRuntime([busybox, unnamed]);
  try {
    fiveContainers(rt);
    const names = async (req: Partial<{ all: boolean; limit: number; since: string; before: string }>) =>
      (await rt.queries.list({ all: false, limit: 0, since: '', before: '', size: false, sinceCreated: '', beforeCreated: '', ...req }, 'r')).map((c) => c.name);
    assert.deepEqual(await names({}), ['/c-four', '/c-two']);
    assert.deepEqual(await names({ all: true }), ['/c-five', '/c-four', '/c-three', '/c-two', '/c-one']);
    assert.deepEqual(await names({ limit: 2 }), ['/c-five', '/c-four'], 'a limit lists stopped ones too');
    assert.deepEqual(await names({ since: 'c-three' }), ['/c-five', '/c-four']);
    assert.deepEqual(await names({ before: 'c-three' }), ['/c-two', '/c-one']);
    assert.deepEqual(await names({ before: 'c-five', since: 'c-two' }), ['/c-four', '/c-three']);
    assert.deepEqual(await names({ before: 'c-five', limit: 1 }), ['/c-four']);
    await assert.rejects(names({ before: 'nope' }), /Could not find container with name or id nope/);
  } finally {
    await rt.dispose();
  }
});

test('list names images as the store does, by short ID when it has no name, and with size adds the writable layer to the image', async () => {
  const rt = testRuntime([busybox, unnamed]);
  try {
    fiveContainers(rt);
    const upper = path.join(rt.paths.dir(containerId('e3')), 'upper');
    fs.mkdirSync(path.join(upper, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'etc', 'motd'), 'x'.repeat(300));
    fs.writeFileSync(path.join(upper, 'big'), 'y'.repeat(20));
    const list = await rt.queries.list({ all: true, limit: 0, since: '', before: '', size: true, sinceCreated: '', beforeCreated: '' }, 'r');
    const four = list.find((c) => c.name === '/c-four')!;
    assert.equal(four.imageName, 'busybox:latest');
    assert.equal(four.sizeRw, 320);
    assert.equal(four.sizeRootFs, 1320);
    assert.equal(list.find((c) => c.name === '/c-three')!.imageName, unnamed.id.slice(0, 12));
    assert.equal(four.path, '/bin/sh');
    assert.deepEqual(four.args, ['-c', 'four']);
    assert.deepEqual(rt.store.requests('imageNames'), [{ ids: [busybox.id, unnamed.id] }]);
  } finally {
    await rt.dispose();
  }
});

test('inspect finds a container by name, full ID or unique prefix, and says 404 otherwise', async () => {
  const rt = testRuntime([busybox]);
  try {
    const a = containerId('f1a');
    const b = containerId('f1b');
    rt.record(a, '/alpha', busybox, 'exited');
    rt.record(b, '/beta', busybox, 'created');
    assert.equal(rt.queries.inspect('alpha').id, a);
    assert.equal(rt.queries.inspect('/beta').id, b);
    assert.equal(rt.queries.inspect(a).name, '/alpha');
    assert.equal(rt.queries.inspect('f1b').id, b);
    assert.throws(() => rt.queries.inspect('f1'), /No such container: f1/, 'an ambiguous prefix names none');
    const beta = rt.queries.inspect('beta');
    assert.equal(beta.state?.neverStarted, true);
    assert.equal(beta.hostsPath, path.join(rt.paths.dir(b), 'hosts'));
    assert.equal(beta.execDriver, 'runc-fake');
  } finally {
    await rt.dispose();
  }
});

test('top of a stopped container is refused without asking the OCI runtime', async () => {
  const rt = testRuntime([busybox]);
  try {
    rt.record(containerId('f2'), '/idle', busybox, 'exited');
    await assert.rejects(rt.queries.top('idle', ''), /is not running/);
    assert.deepEqual(rt.runner.commands, []);
  } finally {
    await rt.dispose();
  }
});

test('the size of a directory counts its regular files, not what links point to', () => {
  const rt = testRuntime([]);
  try {
    const dir = path.join(rt.dir, 'walk');
    fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a', 'b', 'f'), '12345');
    fs.writeFileSync(path.join(dir, 'g'), '123');
    fs.symlinkSync('/etc/passwd', path.join(dir, 'link'));
    assert.equal(dirSize(dir), 8);
    assert.equal(dirSize(path.join(dir, 'missing')), 0);
  } finally {
    void rt.dispose();
  }
});
