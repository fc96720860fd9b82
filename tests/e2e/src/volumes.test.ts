// Volumes through the real docker CLI: binds (read-write, read-only, a
// missing host path created), data volumes that outlive their container,
// --volumes-from, an image's VOLUME filled with the image's content,
// inspect's Volumes/VolumesRW, rm -v; and bad specs refused with nothing
// left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shortTempDir, type Stack, startStackWithBusybox, stopStack } from './harness';

describe('volumes', () => {
  let stack: Stack;
  let host: string;
  before(async () => {
    stack = await startStackWithBusybox();
    host = shortTempDir('vol-');
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(host, { recursive: true, force: true });
  });

  const volumesDir = () => path.join(stack.root, 'volumes');
  const volumeDirs = () => (fs.existsSync(volumesDir()) ? fs.readdirSync(volumesDir()) : []);

  test('binds: read-write, read-only, and a missing host path created', async () => {
    const rw = await stack.docker(['run', '--rm', '-v', `${host}:/data`, 'busybox', 'sh', '-c', 'echo hi > /data/f; cat /data/f']);
    assert.equal(rw.code, 0, rw.stderr);
    assert.equal(rw.stdout, 'hi\n');
    assert.equal(fs.readFileSync(path.join(host, 'f'), 'utf8'), 'hi\n');

    const ro = await stack.docker(['run', '--rm', '-v', `${host}:/data:ro`, 'busybox', 'sh', '-c', 'cat /data/f; echo no > /data/g']);
    assert.notEqual(ro.code, 0);
    assert.equal(ro.stdout, 'hi\n');
    assert.match(ro.stderr, /Read-only file system/);
    assert.ok(!fs.existsSync(path.join(host, 'g')));

    const missing = path.join(host, 'made', 'by', 'start');
    const made = await stack.docker(['run', '--rm', '-v', `${missing}:/m`, 'busybox', 'touch', '/m/there']);
    assert.equal(made.code, 0, made.stderr);
    assert.ok(fs.existsSync(path.join(missing, 'there')));
    assert.deepEqual(volumeDirs(), [], 'binds make no data volume');
  });

  test('a data volume outlives its container, is shared by --volumes-from, and goes with the last rm -v', async () => {
    const first = await stack.docker(['run', '--name', 'keeper', '-v', '/store', 'busybox', 'sh', '-c', 'echo keep > /store/k']);
    assert.equal(first.code, 0, first.stderr);
    const volumes = JSON.parse((await stack.request('GET', '/v1.12/containers/keeper/json')).text);
    const dir = volumes.Volumes['/store'];
    assert.equal(path.dirname(dir), volumesDir());
    assert.deepEqual(volumes.VolumesRW, { '/store': true });
    assert.equal(fs.readFileSync(path.join(dir, 'k'), 'utf8'), 'keep\n');
    const old = JSON.parse((await stack.request('GET', '/v1.11/containers/keeper/json')).text);
    assert.deepEqual(old.Volumes, { '/store': dir });

    const shared = await stack.docker(['run', '--rm', '--volumes-from', 'keeper', 'busybox', 'cat', '/store/k']);
    assert.equal(shared.stdout, 'keep\n', shared.stderr);
    const readOnly = await stack.docker(['run', '--rm', '--volumes-from', 'keeper:ro', 'busybox', 'sh', '-c', 'echo x > /store/k']);
    assert.notEqual(readOnly.code, 0);
    assert.match(readOnly.stderr, /Read-only file system/);

    assert.equal((await stack.docker(['create', '--name', 'sharer', '--volumes-from', 'keeper', 'busybox', 'true'])).code, 0);
    assert.equal((await stack.docker(['start', '-a', 'sharer'])).code, 0);
    assert.equal((await stack.docker(['rm', '-v', 'keeper'])).code, 0);
    assert.ok(fs.existsSync(dir), 'still used by another container');
    assert.equal((await stack.docker(['rm', '-v', 'sharer'])).code, 0);
    assert.ok(!fs.existsSync(dir), 'rm -v of its last user removes it');

    // Without -v a volume stays, as Docker 1.0 left it.
    const kept = await stack.docker(['run', '--name', 'plain', '-v', '/plain', 'busybox', 'true']);
    assert.equal(kept.code, 0, kept.stderr);
    const plainDir = JSON.parse((await stack.request('GET', '/v1.12/containers/plain/json')).text).Volumes['/plain'];
    assert.equal((await stack.docker(['rm', 'plain'])).code, 0);
    assert.ok(fs.existsSync(plainDir));
  });

  test("an image's VOLUME starts with the image's content there", async () => {
    const seed = await stack.docker(['run', '--name', 'seeder', 'busybox', 'sh', '-c', 'mkdir -p /seed && echo from-image > /seed/file && chmod 0750 /seed']);
    assert.equal(seed.code, 0, seed.stderr);
    const committed = await stack.request('POST', '/v1.12/commit?container=seeder&repo=withvolume', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ Volumes: { '/seed': {} } }),
    });
    assert.equal(committed.status, 201, committed.text);
    const run = await stack.docker(['run', '--name', 'user1', 'withvolume', 'sh', '-c', 'cat /seed/file; stat -c %a /seed; echo more >> /seed/file']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'from-image\n750\n');
    const dir = JSON.parse((await stack.request('GET', '/v1.12/containers/user1/json')).text).Volumes['/seed'];
    assert.equal(fs.readFileSync(path.join(dir, 'file'), 'utf8'), 'from-image\nmore\n');
    // A restart keeps the same volume.
    assert.equal((await stack.docker(['start', '-a', 'user1'])).stdout, 'from-image\nmore\n750\n');
    assert.equal((await stack.docker(['rm', '-v', 'user1', 'seeder'])).code, 0);
    assert.ok(!fs.existsSync(dir));
  });

  test('bad specs are refused at start, and nothing is made', async () => {
    const before = volumeDirs();
    const cases: Array<[object, RegExp]> = [
      [{ Binds: ['relative/path:/x'] }, /Invalid volume specification: relative\/path:\/x: the host path must be absolute/],
      [{ Binds: [`${host}:inside`] }, /the container path must be absolute/],
      [{ Binds: [`${host}:/x:rx`] }, /the mode must be ro or rw/],
      [{ VolumesFrom: ['nosuch'] }, /Container nosuch not found\. Impossible to mount its volumes/],
      [{ Binds: ['/:/host'] }, /Invalid bind mount '\/:\/host' : source can't be '\/'\n$/],
    ];
    for (const [hostConfig, message] of cases) {
      const created = await stack.request('POST', '/v1.12/containers/create', {
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ Image: 'busybox', Cmd: ['true'], Volumes: { '/data': {} }, HostConfig: hostConfig }),
      });
      assert.equal(created.status, 201, created.text);
      const id = JSON.parse(created.text).Id;
      const started = await stack.request('POST', `/v1.12/containers/${id}/start`);
      assert.equal(started.status, 500, started.text);
      assert.match(started.text, message);
      const inspect = JSON.parse((await stack.request('GET', `/v1.12/containers/${id}/json`)).text);
      assert.deepEqual(inspect.Volumes, {});
      assert.equal(inspect.State.Running, false);
      assert.equal((await stack.request('DELETE', `/v1.12/containers/${id}?v=1`)).status, 204);
    }
    assert.deepEqual(volumeDirs(), before, 'no data volume was made for a refused start');
    assert.equal((await stack.request('GET', '/_ping')).status, 200);
  });

  test('a start body that decodes to nothing keeps the saved host config; a JSON start without a body is 500 EOF', async () => {
    fs.writeFileSync(path.join(host, 'kept.txt'), 'kept\n');
    const json = { 'Content-Type': 'application/json' };
    const created = await stack.request('POST', '/v1.12/containers/create', { headers: json, body: JSON.stringify({ Image: 'busybox', Cmd: ['cat', '/h/kept.txt'], HostConfig: { Binds: [`${host}:/h:ro`] } }) });
    const id = JSON.parse(created.text).Id as string;
    const eof = await stack.request('POST', `/v1.12/containers/${id}/start`, { headers: json });
    assert.equal(eof.status, 500);
    assert.equal(eof.text, 'EOF\n');
    for (const body of ['{}', 'null']) {
      assert.equal((await stack.request('POST', `/v1.12/containers/${id}/start`, { headers: json, body })).status, 204, body);
      assert.equal(JSON.parse((await stack.request('POST', `/v1.12/containers/${id}/wait`)).text).StatusCode, 0, `${body}: the bind is still there`);
      assert.equal((await stack.docker(['logs', id])).stdout.split('\n').filter(Boolean).at(-1), 'kept');
      assert.deepEqual(JSON.parse((await stack.request('GET', `/v1.12/containers/${id}/json`)).text).HostConfig.Binds, [`${host}:/h:ro`]);
    }
    assert.equal((await stack.request('DELETE', `/v1.12/containers/${id}`)).status, 204);
  });
});
