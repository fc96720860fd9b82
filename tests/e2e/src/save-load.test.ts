// docker save and docker load: Docker 1.0's layout and today's, through the
// real CLI, with parent chains, and with the Docker engine 20.10 on both sides.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { busyboxRootfsTar, listTree, makeTar, tarBuffer } from './images-fixtures';
import { shortTempDir, type Stack, startReferenceDocker, startStackWithBusybox, stopStack } from './harness';

/** Reads a tar into a map of name -> content (test archives are small). */
async function readTar(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      if (h.type === 'file') out.set(h.name, Buffer.concat(chunks));
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    fs.createReadStream(file).pipe(extract);
  });
  return out;
}

function writeTar(file: string, entries: Map<string, Buffer>): Promise<void> {
  const pack = tar.pack();
  for (const [name, body] of entries) pack.entry({ name, size: body.length } as tar.Header, body);
  pack.finalize();
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(file);
    (pack as unknown as NodeJS.ReadableStream).pipe(out);
    out.on('finish', resolve);
    out.on('error', reject);
  });
}

describe('save and load', () => {
  let stack: Stack;
  let work: string;
  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('saveload-');
    assert.equal((await stack.docker(['tag', 'busybox', 'busybox:two'])).code, 0);
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('save -o, rmi, load -i gives back the same image ID and tags', async () => {
    const id = (await stack.docker(['inspect', '-f', '{{.Id}}', 'busybox'])).stdout.trim();
    const file = path.join(work, 'busybox.tar');
    const saved = await stack.docker(['save', '-o', file, 'busybox']);
    assert.equal(saved.code, 0, saved.stderr);
    const entries = await readTar(file);
    assert.equal(entries.get(`${id}/VERSION`)?.toString(), '1.0');
    assert.equal(JSON.parse(entries.get(`${id}/json`)!.toString()).id, id);
    assert.deepEqual(JSON.parse(entries.get('repositories')!.toString()), { busybox: { latest: id, two: id } });
    const manifest = JSON.parse(entries.get('manifest.json')!.toString());
    assert.deepEqual(manifest[0].Layers, [`${id}/layer.tar`]);
    const config = JSON.parse(entries.get(manifest[0].Config)!.toString());
    assert.equal(config.rootfs.diff_ids[0], `sha256:${createHash('sha256').update(entries.get(`${id}/layer.tar`)!).digest('hex')}`);

    assert.equal((await stack.docker(['rmi', 'busybox', 'busybox:two'])).code, 0);
    const loaded = await stack.docker(['load', '-i', file]);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', 'busybox:latest'])).stdout.trim(), id);
    assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', 'busybox:two'])).stdout.trim(), id);
    // Loading again changes nothing.
    assert.equal((await stack.docker(['load', '-i', file])).code, 0);
    assert.equal(JSON.parse((await stack.request('GET', '/images/json?all=1')).text).length, 1);
  });

  test('loads and saves of many MiB at the same time all finish (uploads have a connection of their own)', async () => {
    // Two images of 24 MiB of noise: one to save while the other is loaded.
    const files: string[] = [];
    for (const name of ['updown-a', 'updown-b']) {
      const dir = path.join(work, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'noise.bin'), randomBytes(24 * 1024 * 1024));
      const tarFile = `${dir}.tar`;
      execFileSync('tar', ['-C', dir, '-cf', tarFile, '.']);
      assert.equal((await stack.docker(['import', tarFile, `${name}:1`])).code, 0);
      files.push(tarFile);
    }
    const saved = path.join(work, 'updown-b-saved.tar');
    assert.equal((await stack.docker(['save', '-o', saved, 'updown-b:1'])).code, 0);
    assert.equal((await stack.docker(['rmi', 'updown-b:1'])).code, 0);
    const started = Date.now();
    const [load, save1, save2] = await Promise.all([
      stack.docker(['load', '-i', saved], { timeoutMs: 60_000 }),
      stack.docker(['save', '-o', path.join(work, 'updown-a-1.tar'), 'updown-a:1'], { timeoutMs: 60_000 }),
      stack.docker(['save', '-o', path.join(work, 'updown-a-2.tar'), 'updown-a:1'], { timeoutMs: 60_000 }),
    ]);
    const took = Date.now() - started;
    assert.equal(load.code, 0, load.stderr);
    assert.equal(save1.code, 0, save1.stderr);
    assert.equal(save2.code, 0, save2.stderr);
    assert.ok(took < 20_000, `done in ${took} ms (a wedged connection took 45 s and failed)`);
    assert.ok(fs.statSync(path.join(work, 'updown-a-1.tar')).size > 24 * 1024 * 1024);
    assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', 'updown-b:1'])).code, 0);
    assert.equal((await stack.docker(['rmi', 'updown-a:1', 'updown-b:1'])).code, 0);
  });

  test('GET /images/(name)/get per version, and unknown names before any byte', async () => {
    const v17 = await stack.request('GET', '/v1.7/images/busybox:latest/get');
    assert.equal(v17.status, 200);
    assert.equal(v17.headers['content-type'], 'application/x-tar');
    const v10 = await stack.request('GET', '/v1.0/images/busybox/get');
    assert.equal(v10.status, 200);
    assert.equal(v10.headers['content-type'], undefined);
    const missing = await stack.request('GET', '/v1.12/images/get?names=busybox&names=nothere');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, 'No such image: nothere\n');
    const cli = await stack.docker(['save', '-o', path.join(work, 'x.tar'), 'nothere']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /No such image: nothere/);
  });

  test('a chain of two images: history walks it, rmi prunes the parent unless noprune', async () => {
    const base = fs.readFileSync(busyboxRootfsTar());
    const childLayer = await makeTar([{ name: 'hello.txt', body: 'hi\n' }]);
    const baseId = 'b'.repeat(63) + '1';
    const childId = 'c'.repeat(63) + '2';
    const meta = (id: string, parent?: string, cmd?: string[]) => Buffer.from(JSON.stringify({
      id, ...(parent ? { parent } : {}), created: '2014-06-09T12:00:00.000000000Z', container_config: { Cmd: cmd ?? null }, architecture: 'amd64', os: 'linux',
    }));
    const archive = path.join(work, 'chain.tar');
    await writeTar(archive, new Map([
      [`${baseId}/VERSION`, Buffer.from('1.0')], [`${baseId}/json`, meta(baseId)], [`${baseId}/layer.tar`, base],
      [`${childId}/VERSION`, Buffer.from('1.0')], [`${childId}/json`, meta(childId, baseId, ['/bin/sh', '-c', 'echo hi > /hello.txt'])], [`${childId}/layer.tar`, childLayer],
      ['repositories', Buffer.from(JSON.stringify({ chain: { latest: childId } }))],
    ]));
    const r = await stack.request('POST', '/v1.12/images/load', { body: fs.readFileSync(archive) });
    assert.equal(r.status, 200, r.text);
    const history = await stack.docker(['history', '--no-trunc', '--format', '{{.ID}} {{.CreatedBy}}', 'chain']);
    assert.deepEqual(history.stdout.trim().split('\n'), [`${childId} /bin/sh -c echo hi > /hello.txt`, `${baseId} `].map((s) => s.trimEnd()));
    const list = JSON.parse((await stack.request('GET', '/v1.12/images/json')).text).map((e: any) => e.Id);
    assert.ok(list.includes(childId) && !list.includes(baseId), 'intermediate images are listed only with all=1');
    const all = JSON.parse((await stack.request('GET', '/v1.12/images/json?all=1')).text).find((e: any) => e.Id === childId);
    assert.equal(all.ParentId, baseId);
    assert.equal(all.VirtualSize, all.Size + JSON.parse((await stack.request('GET', `/v1.12/images/${baseId}/json`)).text).Size);
    const dangling = JSON.parse((await stack.request('GET', `/v1.12/images/json?filters=${encodeURIComponent('{"dangling":["true"]}')}`)).text);
    assert.deepEqual(dangling, []);
    const parentOnly = await stack.request('DELETE', `/v1.12/images/${baseId}`);
    assert.equal(parentOnly.status, 409);
    assert.equal(parentOnly.text, `Conflict, ${baseId} wasn't deleted\n`, 'untagged with a child: nothing to untag or delete');

    const kept = await stack.request('DELETE', '/v1.12/images/chain?noprune=1');
    assert.deepEqual(JSON.parse(kept.text), [{ Untagged: 'chain:latest' }, { Deleted: childId }]);
    const now = JSON.parse((await stack.request('GET', `/v1.12/images/json?filters=${encodeURIComponent('{"dangling":["true"]}')}`)).text);
    assert.deepEqual(now.map((e: any) => e.Id), [baseId]);
    assert.equal((await stack.request('DELETE', `/v1.12/images/${baseId}`)).status, 200);

    assert.equal((await stack.request('POST', '/v1.12/images/load', { body: fs.readFileSync(archive) })).status, 200);
    const pruned = await stack.docker(['rmi', 'chain']);
    assert.deepEqual(pruned.stdout.trim().split('\n'), ['Untagged: chain:latest', `Deleted: ${childId}`, `Deleted: ${baseId}`]);
  });

  test('a chain of 125 empty layers loads (empty layers are common in saved images); a container on all of it is refused as Docker 1.0 refused it, on 124 created', async () => {
    const empty = await makeTar([]);
    const entries = new Map<string, Buffer>();
    const ids: string[] = [];
    for (let i = 0; i < 125; i++) {
      const id = createHash('sha256').update(`deep-${i}`).digest('hex');
      const meta = { id, ...(i ? { parent: ids[i - 1] } : {}), created: '2014-06-09T12:00:00.000000000Z', container_config: { Cmd: null }, config: { Cmd: ['true'] }, os: 'linux' };
      entries.set(`${id}/VERSION`, Buffer.from('1.0')).set(`${id}/json`, Buffer.from(JSON.stringify(meta))).set(`${id}/layer.tar`, empty);
      ids.push(id);
    }
    entries.set('repositories', Buffer.from(JSON.stringify({ deep: { '124': ids[123], '125': ids[124] } })));
    const archive = path.join(work, 'deep.tar');
    await writeTar(archive, entries);
    const loaded = await stack.request('POST', '/v1.12/images/load', { body: fs.readFileSync(archive) });
    assert.equal(loaded.status, 200, loaded.text);
    const create = (image: string) => stack.request('POST', '/v1.12/containers/create', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Image: image }) });
    const tooDeep = await create('deep:125');
    assert.equal(tooDeep.status, 500);
    assert.equal(tooDeep.text, 'Cannot create container with more than 127 parents\n');
    const deepest = await create('deep:124');
    assert.equal(deepest.status, 201, deepest.text);
    assert.equal((await stack.request('DELETE', `/v1.12/containers/${JSON.parse(deepest.text).Id}`)).status, 204);
    // Nothing holds the refused one: the whole chain goes.
    assert.equal((await stack.request('DELETE', '/v1.12/images/deep:124')).status, 200);
    const gone = await stack.request('DELETE', '/v1.12/images/deep:125');
    assert.equal(gone.status, 200, gone.text);
    assert.equal((JSON.parse(gone.text) as object[]).length, 126, 'the tag and 125 images');
  });

  test('the manifest.json layout alone (today\'s engines) loads, named by its config digest', async () => {
    const file = path.join(work, 'busybox.tar');
    const entries = await readTar(file);
    const modern = new Map([...entries].filter(([name]) => !/\/(json|VERSION)$/.test(name) && name !== 'repositories'));
    const archive = path.join(work, 'modern.tar');
    await writeTar(archive, modern);
    const manifest = JSON.parse(entries.get('manifest.json')!.toString());
    manifest[0].RepoTags = ['modern:v1'];
    modern.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await writeTar(archive, modern);
    const r = await stack.docker(['load', '-i', archive]);
    assert.equal(r.code, 0, r.stderr);
    const configDigest = createHash('sha256').update(entries.get(manifest[0].Config)!).digest('hex');
    assert.equal((await stack.docker(['inspect', '-f', '{{.Id}}', 'modern:v1'])).stdout.trim(), configDigest);
  });

  test('a bad archive to load: 500, nothing left behind, the daemon answers', async () => {
    const layers = () => [...listTree(path.join(stack.root, 'images', 'l')), ...listTree(path.join(stack.root, 'images', 'tmp'))];
    const before = layers();
    const restarts = stack.state().processes.map((p) => p.restarts);
    const garbage = await stack.request('POST', '/v1.12/images/load', { body: Buffer.alloc(5000, 1) });
    assert.equal(garbage.status, 500, garbage.text);
    const half = fs.readFileSync(path.join(work, 'busybox.tar'));
    const truncated = await stack.request('POST', '/v1.12/images/load', { body: half.subarray(0, Math.floor(half.length / 2)) });
    assert.equal(truncated.status, 500, truncated.text);
    const orphan = await tarBuffer(new Map([['d'.repeat(64) + '/json', Buffer.from(JSON.stringify({ id: 'd'.repeat(64), parent: 'e'.repeat(64), created: '2014-01-01T00:00:00Z' }))], ['d'.repeat(64) + '/layer.tar', await makeTar([{ name: 'x', body: 'x' }])]]));
    const missingParent = await stack.request('POST', '/v1.12/images/load', { body: orphan });
    assert.equal(missingParent.status, 500);
    assert.match(missingParent.text, /lacks image e{64}/);
    assert.deepEqual(layers(), before);
    assert.deepEqual(stack.state().processes.map((p) => p.restarts), restarts);
  });

  test('the Docker engine 20.10 loads and runs what Stevedore saved, and Stevedore loads what it saved', async () => {
    const ref = await startReferenceDocker();
    try {
      const file = path.join(work, 'busybox.tar');
      const loaded = await ref.run(['load', '-i', file]);
      assert.equal(loaded.code, 0, loaded.stderr);
      const ran = await ref.run(['run', '--rm', '--net=none', 'busybox:two', 'cat', '/etc/passwd']);
      assert.equal(ran.code, 0, ran.stderr);
      assert.match(ran.stdout, /^root:x:0:0/);
      const refFile = path.join(work, 'from-ref.tar');
      assert.equal((await ref.run(['tag', 'busybox:two', 'fromref:v1'])).code, 0);
      assert.equal((await ref.run(['save', '-o', refFile, 'fromref:v1'])).code, 0);
      const back = await stack.docker(['load', '-i', refFile]);
      assert.equal(back.code, 0, back.stderr);
      const size = (await stack.docker(['inspect', '-f', '{{.Size}}', 'fromref:v1'])).stdout.trim();
      assert.equal(size, (await stack.docker(['inspect', '-f', '{{.Size}}', 'busybox:two'])).stdout.trim());
    } finally {
      await ref.stop();
    }
  });
});
