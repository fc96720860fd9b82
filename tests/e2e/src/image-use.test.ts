// Images and the containers that use them: an image in use cannot go, a
// loaded image runs, and rmi racing a create never loses a layer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { busyboxRootfsTar } from './images-fixtures';
import { shortTempDir, type Stack, startStackWithBusybox, stopStack } from './harness';

describe('images in use', () => {
  let stack: Stack;
  let work: string;
  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('imguse-');
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('rmi of an image a container uses: 409 without -f; with -f it is untagged and the container still runs', async () => {
    assert.equal((await stack.docker(['tag', 'busybox', 'inuse:v1'])).code, 0);
    const imageId = (await stack.docker(['inspect', '-f', '{{.Id}}', 'inuse:v1'])).stdout.trim();
    assert.equal((await stack.docker(['rmi', 'busybox'])).code, 0, 'one of two tags goes');
    const id = (await stack.docker(['run', '-d', 'inuse:v1', 'sleep', '300'])).stdout.trim();
    const refused = await stack.docker(['rmi', 'inuse:v1']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Conflict, cannot delete [0-9a-f]{12} because the running container [0-9a-f]{12} is using it/);
    assert.equal((await stack.request('DELETE', '/v1.12/images/inuse:v1')).status, 409);
    const forcedRunning = await stack.request('DELETE', '/v1.12/images/inuse:v1?force=1');
    assert.equal(forcedRunning.status, 409);
    assert.equal(forcedRunning.text, `Conflict, cannot force delete ${imageId.slice(0, 12)} because the running container ${id.slice(0, 12)} is using it, stop it and retry\n`);
    const otherTag = await stack.request('DELETE', '/v1.12/images/inuse:v2');
    assert.equal(otherTag.status, 404);
    assert.equal(otherTag.text, 'No such image: inuse:v2\n', 'the repository exists, the tag does not');
    assert.equal((await stack.docker(['rm', '-f', id])).code, 0);
    const stopped = (await stack.docker(['create', 'inuse:v1', 'true'])).stdout.trim();
    const forced = await stack.docker(['rmi', '-f', 'inuse:v1']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(forced.stdout.trim().split('\n'), ['Untagged: inuse:v1']);
    const ran = await stack.docker(['start', '-a', stopped]);
    assert.equal(ran.code, 0, `the container still has its root filesystem: ${ran.stderr}`);
    assert.equal((await stack.docker(['rm', stopped])).code, 0);
    // With no container left, the image can go.
    assert.equal((await stack.request('DELETE', `/v1.12/images/${imageId}`)).status, 200);
    assert.equal((await stack.docker(['import', busyboxRootfsTar(), 'busybox:latest'])).code, 0);
  });

  test('a container runs from a loaded image (save, rmi, load)', async () => {
    const file = path.join(work, 'bb.tar');
    assert.equal((await stack.docker(['save', '-o', file, 'busybox'])).code, 0);
    assert.equal((await stack.docker(['rmi', 'busybox'])).code, 0);
    assert.equal((await stack.docker(['load', '-i', file])).code, 0);
    const r = await stack.docker(['run', '--rm', 'busybox', 'sh', '-c', 'echo from-loaded; ls /bin | wc -l']);
    assert.equal(r.code, 0, r.stderr);
    const [hello, count] = r.stdout.trim().split('\n');
    assert.equal(hello, 'from-loaded');
    assert.ok(Number(count) > 100);
  });

  test('rmi racing create: one of them wins, and a created container can always run', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await stack.docker(['tag', 'busybox', `race:v${i}`])).code, 0);
      assert.equal((await stack.docker(['rmi', 'busybox'])).code, 0);
      const [rmi, create] = await Promise.all([stack.docker(['rmi', `race:v${i}`]), stack.docker(['create', `race:v${i}`, 'echo', 'ran'])]);
      if (create.code === 0) {
        const run = await stack.docker(['start', '-a', create.stdout.trim()]);
        assert.equal(run.stdout, 'ran\n', `the layers of a created container stay: ${run.stderr}`);
        assert.equal((await stack.docker(['rm', create.stdout.trim()])).code, 0);
        if (rmi.code !== 0) assert.match(rmi.stderr, /Conflict/);
      } else {
        assert.equal(rmi.code, 0, rmi.stderr);
        assert.match(create.stderr, /No such image|Unable to find image/);
      }
      // Put busybox back for the next round, from whichever image is left.
      const left = await stack.docker(['images', '-a', '-q']);
      if (left.stdout.trim()) {
        assert.equal((await stack.docker(['tag', left.stdout.trim().split('\n')[0], 'busybox'])).code, 0);
        await stack.docker(['rmi', `race:v${i}`]);
      } else assert.equal((await stack.docker(['import', busyboxRootfsTar(), 'busybox:latest'])).code, 0);
    }
  });

  test('insert is not served, as in Docker 1.0', async () => {
    const r = await stack.request('POST', '/v1.10/images/busybox/insert?url=http://127.0.0.1/x&path=/x');
    assert.equal(r.status, 404);
    assert.equal(r.text, '404 page not found\n');
  });
});
