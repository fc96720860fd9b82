// The image store through the real docker CLI and raw HTTP: import (file,
// stdin, URL, every compression), list in both shapes, inspect, history,
// tag, rmi with Docker 1.0's rules, events, and bad archives that leave
// nothing behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { busyboxRootfsTar, listTree, makeTar } from './images-fixtures';
import { removedAtExit, sleep, startStack, stopStack, type Stack } from './harness';

async function importBody(stack: Stack, body: Buffer, query: string, version = '1.12') {
  return stack.request('POST', `/v${version}/images/create?fromSrc=-&${query}`, { headers: { 'Content-Type': 'application/x-tar' }, body });
}

/** The image store's layer and scratch directories: nothing may be left there by a failure. */
function storeFiles(stack: Stack): string[] {
  return [...listTree(path.join(stack.root, 'images', 'l')).map((f) => `l/${f}`), ...listTree(path.join(stack.root, 'images', 'tmp')).map((f) => `tmp/${f}`)];
}

describe('images', () => {
  let stack: Stack;
  let tarFile: string;
  before(async () => {
    stack = await startStack();
    tarFile = busyboxRootfsTar();
  });
  // The crash test kills the image store on purpose; the bad-input tests check restarts themselves.
  after(() => stopStack(stack, { allowRestarts: true }));

  test('docker import of a file and of stdin; images, -a, -q, --no-trunc', async () => {
    const a = await stack.docker(['import', tarFile, 'busybox:latest']);
    assert.equal(a.code, 0, a.stderr);
    const idA = a.stdout.trim();
    assert.match(idA, /^[0-9a-f]{64}$/);
    const piped = execFileSync('sh', ['-c', `docker import - stdinbox:v1 < ${tarFile}`], { env: { ...process.env, DOCKER_HOST: stack.dockerHost, DOCKER_CONFIG: stack.dockerConfig }, encoding: 'utf8' });
    const idB = piped.trim();
    assert.match(idB, /^[0-9a-f]{64}$/);
    assert.notEqual(idA, idB);

    const list = await stack.docker(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(list.stdout.trim().split('\n').sort(), [`busybox:latest ${idA.slice(0, 12)}`, `stdinbox:v1 ${idB.slice(0, 12)}`]);
    const quiet = await stack.docker(['images', '-q', '--no-trunc']);
    assert.deepEqual(quiet.stdout.trim().split('\n').sort(), [idA, idB].sort());
    const all = await stack.docker(['images', '-a', '-q']);
    assert.equal(all.stdout.trim().split('\n').length, 2);
  });

  test('docker images REPO and the list\'s filter: a glob on the repository, untagged images left out', async () => {
    assert.equal((await stack.docker(['tag', 'busybox', 'crew/filtered:v1'])).code, 0);
    const cli = (await stack.docker(['images', 'crew/filtered', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.trim().split('\n');
    assert.deepEqual(cli, ['crew/filtered:v1']);
    const raw = JSON.parse((await stack.request('GET', '/v1.12/images/json?filter=crew/*')).text) as Array<{ RepoTags: string[] }>;
    assert.deepEqual(raw.flatMap((i) => i.RepoTags).filter((t) => !t.startsWith('crew/filtered')), [], raw.map((i) => i.RepoTags).join(' '));
    assert.ok(raw.some((i) => i.RepoTags.includes('crew/filtered:v1')));
    assert.ok(raw.every((i) => !i.RepoTags.includes('<none>:<none>')));
    assert.equal((await stack.docker(['rmi', 'crew/filtered:v1'])).code, 0);
  });

  test('inspect and history', async () => {
    const r = await stack.docker(['inspect', '--format', '{{.Id}}|{{.Comment}}|{{.Os}}|{{.Size}}', 'busybox']);
    assert.equal(r.code, 0, r.stderr);
    const [id, comment, os, size] = r.stdout.trim().split('|');
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(comment, 'Imported from -');
    assert.equal(os, 'linux');
    assert.ok(Number(size) > 1_000_000);
    const h = await stack.docker(['history', '--no-trunc', '--format', '{{.ID}}|{{.Comment}}', 'busybox']);
    assert.equal(h.code, 0, h.stderr);
    assert.deepEqual(h.stdout.trim().split('\n'), [`${id}|Imported from -`]);
    // Docker 1.0's keys (and Comment, docs/deviations.md); Tags null for an untagged layer, a list for a tagged one.
    const entries = JSON.parse((await stack.request('GET', '/v1.0/images/busybox/history')).text) as Array<Record<string, unknown>>;
    assert.deepEqual(Object.keys(entries[0]), ['Comment', 'Created', 'CreatedBy', 'Id', 'Size', 'Tags']);
    assert.ok((entries[0].Tags as string[]).includes('busybox:latest'), JSON.stringify(entries[0].Tags));
    const missing = await stack.docker(['image', 'inspect', 'nosuchimage']);
    assert.equal(missing.code, 1);
    const raw = await stack.request('GET', '/v1.12/images/nosuchimage/json');
    assert.equal(raw.status, 404);
    assert.equal(raw.text, 'No such image: nosuchimage\n');
  });

  test('tag, and rmi of one of several tags, by ID across repositories, and -f', async () => {
    assert.equal((await stack.docker(['tag', 'busybox', 'other/box:v2'])).code, 0);
    assert.equal((await stack.docker(['tag', 'busybox', 'busybox:extra'])).code, 0);
    const id = (await stack.docker(['inspect', '--format', '{{.Id}}', 'busybox'])).stdout.trim();
    const one = await stack.docker(['rmi', 'busybox:extra']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout.trim(), 'Untagged: busybox:extra');
    assert.equal((await stack.docker(['inspect', 'busybox'])).code, 0);
    const byId = await stack.docker(['rmi', id.slice(0, 12)]);
    assert.equal(byId.code, 1);
    assert.match(byId.stderr, /Conflict, cannot delete image [0-9a-f]{12} because it is tagged in multiple repositories, use -f to force/);
    const raw = await stack.request('DELETE', `/v1.12/images/${id.slice(0, 12)}`);
    assert.equal(raw.status, 409);
    // A repository whose name is contained in the image's ID: Docker 1.0 took the name as the ID.
    const inside = id.slice(3, 11);
    assert.equal((await stack.docker(['tag', 'busybox', inside])).code, 0);
    const asId = await stack.request('DELETE', `/v1.12/images/${inside}`);
    assert.equal(asId.status, 409, asId.text);
    assert.equal(asId.text, `Conflict, cannot delete image ${inside} because it is tagged in multiple repositories, use -f to force\n`);
    const asTag = await stack.docker(['rmi', `${inside}:latest`]);
    assert.equal(asTag.stdout.trim(), `Untagged: ${inside}:latest`, asTag.stderr);
    const forced = await stack.docker(['rmi', '-f', id.slice(0, 12)]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(forced.stdout.trim().split('\n'), ['Untagged: busybox:latest', 'Untagged: other/box:v2', `Deleted: ${id}`]);
    const unknown = await stack.docker(['rmi', 'busybox']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No such image: busybox/);
  });

  test('every compression Docker 1.0 accepted imports to the same content', async () => {
    const sizes: number[] = [];
    for (const [tool, ext] of [['gzip', 'gz'], ['bzip2', 'bz2'], ['xz', 'xz']]) {
      const file = removedAtExit(`${tarFile}.${ext}`);
      if (!fs.existsSync(file)) execFileSync('sh', ['-c', `${tool} -c ${tarFile} > ${file}`]);
      const r = await stack.docker(['import', file, `compressed:${ext}`]);
      assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
      sizes.push(Number((await stack.docker(['inspect', '--format', '{{.Size}}', `compressed:${ext}`])).stdout.trim()));
    }
    assert.equal(new Set(sizes).size, 1);
  });

  test('import from a URL streams Downloading and Importing progress, then the ID', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': fs.statSync(tarFile).size });
      fs.createReadStream(tarFile).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as { port: number };
    try {
      const r = await stack.request('POST', `/v1.12/images/create?fromSrc=http://127.0.0.1:${port}/rootfs.tar&repo=fromurl&tag=v1`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/json');
      const messages = r.text.split(/\r\n|(?<=\})(?=\{)/).filter(Boolean).map((l) => JSON.parse(l));
      assert.equal(messages[0].status, `Downloading from http://127.0.0.1:${port}/rootfs.tar`);
      const importing = messages.filter((m) => m.status === 'Importing');
      assert.ok(importing.length >= 1);
      assert.equal(importing.at(-1).progressDetail.current, fs.statSync(tarFile).size);
      assert.match(messages.at(-1).status, /^[0-9a-f]{64}$/);
      assert.equal((await stack.docker(['inspect', 'fromurl:v1'])).code, 0);

      // Gate G1 for an error after output started: `Error: …` text at v1.0, a JSON error from v1.1.
      const missing = `http://127.0.0.1:${port}/missing.tar`;
      server.removeAllListeners('request');
      server.on('request', (_req, res) => res.writeHead(404).end('gone'));
      const text = await stack.request('POST', `/v1.0/images/create?fromSrc=${missing}`);
      assert.equal(text.status, 200);
      assert.equal(text.headers['content-type'], undefined);
      assert.match(text.text, new RegExp(`^Downloading from ${missing.replace(/[./]/g, '\\$&')}\r\n(.*\r\n)*Error: [^\r\n]*404[^\r\n]*\r\n$`));
      const json = await stack.request('POST', `/v1.1/images/create?fromSrc=${missing}`);
      assert.equal(json.headers['content-type'], 'application/json');
      const last = JSON.parse(json.text.split(/\r\n|(?<=\})(?=\{)/).filter(Boolean).at(-1)!) as { error: string; errorDetail: { message: string } };
      assert.match(last.error, /404/);
      assert.equal(last.errorDetail.message, last.error);
    } finally {
      server.close();
    }
  });

  test('per version: the image list before and from v1.7, inspect before and from v1.12, viz, text import at v1.0', async () => {
    const tar = fs.readFileSync(tarFile);
    const v10 = await importBody(stack, tar, 'repo=localhost:5000/team/app&tag=v1', '1.0');
    assert.equal(v10.status, 200);
    assert.equal(v10.headers['content-type'], undefined);
    assert.match(v10.text, /^[0-9a-f]{64}\r\n$/);
    const id = v10.text.trim();

    const legacy = JSON.parse((await stack.request('GET', '/v1.6/images/json')).text);
    const entry = legacy.find((e: any) => e.Id === id);
    assert.deepEqual(Object.keys(entry).sort(), ['Created', 'Id', 'Repository', 'Size', 'Tag', 'VirtualSize']);
    assert.equal(entry.Repository, 'localhost:5000/team/app');
    assert.equal(entry.Tag, 'v1');
    const current = JSON.parse((await stack.request('GET', '/v1.12/images/json')).text);
    const e12 = current.find((e: any) => e.Id === id);
    assert.deepEqual(Object.keys(e12), ['Created', 'Id', 'ParentId', 'RepoTags', 'Size', 'VirtualSize']);
    assert.deepEqual(e12.RepoTags, ['localhost:5000/team/app:v1']);

    // An untagged image: once, as <none> <none>, in the legacy list; <none>:<none> from v1.7.
    const bare = (await importBody(stack, await makeTar([{ name: 'only-file', body: 'untagged' }]), '', '1.0')).text.trim();
    const legacyNone = (JSON.parse((await stack.request('GET', '/v1.6/images/json')).text) as any[]).filter((e) => e.Id === bare);
    assert.deepEqual(legacyNone.map((e) => [e.Repository, e.Tag]), [['<none>', '<none>']]);
    const currentNone = (JSON.parse((await stack.request('GET', '/v1.7/images/json')).text) as any[]).find((e) => e.Id === bare);
    assert.deepEqual(currentNone.RepoTags, ['<none>:<none>']);
    assert.equal((await stack.request('DELETE', `/v1.12/images/${bare}`)).status, 200);

    const old = JSON.parse((await stack.request('GET', '/v1.11/images/localhost:5000/team/app:v1/json')).text);
    assert.equal(old.id, id);
    assert.equal(old.Id, undefined);
    assert.ok('container_config' in old && !('parent' in old));
    const cur = JSON.parse((await stack.request('GET', '/v1.12/images/localhost:5000/team/app:v1/json')).text);
    // Docker 1.0's twelve keys, sorted, and VirtualSize (docs/deviations.md).
    assert.deepEqual(Object.keys(cur), ['Architecture', 'Author', 'Comment', 'Config', 'Container', 'ContainerConfig', 'Created', 'DockerVersion', 'Id', 'Os', 'Parent', 'Size', 'VirtualSize']);
    assert.equal(cur.Id, id);
    assert.equal(cur.Parent, '');

    const viz = await stack.request('GET', '/v1.6/images/viz');
    assert.equal(viz.status, 200);
    assert.match(viz.text, new RegExp(`^digraph docker \\{\\n base -> "${''}`));
    const gone = await stack.request('GET', '/v1.7/images/viz');
    assert.equal(gone.status, 404);
    assert.equal(gone.text, 'This is now implemented in the client.\n');

    const del = await stack.request('DELETE', '/v1.12/images/localhost:5000/team/app:v1');
    assert.equal(del.status, 200);
    assert.deepEqual(JSON.parse(del.text), [{ Untagged: 'localhost:5000/team/app:v1' }, { Deleted: id }]);
  });

  test('untag and delete reach the event stream', async () => {
    const since = Math.floor(Date.now() / 1000);
    const id = (await stack.docker(['import', tarFile, 'evented:v1'])).stdout.trim();
    assert.equal((await stack.docker(['rmi', 'evented:v1'])).code, 0);
    await sleep(1100);
    const ev = await stack.request('GET', `/v1.12/events?since=${since}&until=${Math.floor(Date.now() / 1000)}`);
    const events = ev.text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.id === id);
    assert.deepEqual(events.map((e) => [e.status, e.Type]), [['untag', 'image'], ['delete', 'image']]);
    assert.equal(events[0].from, undefined);
  });

  test('bad archives and names: Docker 1.0\'s status, a clear message, nothing left behind', async () => {
    const before = storeFiles(stack);
    const restartsBefore = stack.state().processes.map((p) => p.restarts);
    const imagesBefore = JSON.parse((await stack.request('GET', '/images/json?all=1')).text).length;
    const good = fs.readFileSync(tarFile);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['not an archive', Buffer.from('this is not a tar archive at all, just some words '.repeat(40)), /not a valid tar archive|empty or not a tar/],
      ['a truncated archive', good.subarray(0, 700_000), /not a valid tar archive|Unexpected end/i],
      ['a corrupt gzip', Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(3000, 7)]), /not a valid tar archive|incorrect header|invalid/i],
      ['an entry with ..', await makeTar([{ name: 'ok.txt', body: 'x' }, { name: '../../escaped.txt', body: 'evil' }]), /points outside the target/],
      // The link is followed inside the layer, where /tmp does not exist.
      ['a write through an absolute symlink', await makeTar([{ name: 'link', type: 'symlink', linkname: '/tmp' }, { name: 'link/stevedore-evil.txt', body: 'evil' }]), /Cannot extract the archive entry "link\/stevedore-evil.txt"/],
      ['a hard link out', await makeTar([{ name: 'a', body: 'x' }, { name: 'b', type: 'link', linkname: '../../../etc/passwd' }]), /Archive entry "b" links to "..\/..\/..\/etc\/passwd", outside the target/],
    ];
    for (const [what, body, message] of cases) {
      const r = await importBody(stack, body, 'repo=bad&tag=v1');
      assert.equal(r.status, 500, `${what}: ${r.status} ${r.text}`);
      assert.match(r.text, message, what);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8', what);
    }
    assert.ok(!fs.existsSync('/tmp/stevedore-evil.txt'));
    assert.ok(!fs.existsSync(path.join(stack.root, 'escaped.txt')));
    for (const [repo, message] of [['UPPER', /Invalid repository name \(UPPER\)/], ['ok', /^Illegal tag name: bad:tag!\n$/]] as const) {
      const r = await importBody(stack, good, `repo=${repo}&tag=${repo === 'ok' ? 'bad:tag!' : 'v1'}`);
      assert.equal(r.status, 500);
      assert.match(r.text, message);
    }
    assert.deepEqual(storeFiles(stack), before);
    assert.equal(JSON.parse((await stack.request('GET', '/images/json?all=1')).text).length, imagesBefore);
    assert.equal((await stack.request('GET', '/_ping')).status, 200);
    // No service crashed on the way (the supervisor would have hidden it).
    assert.deepEqual(stack.state().processes.map((p) => p.restarts), restartsBefore);

    // An absolute name is relative to the layer, as Docker read it: imported, inside.
    const abs = await importBody(stack, await makeTar([{ name: '/tmp/stevedore-evil.txt', body: 'evil' }]), 'repo=absolute');
    assert.equal(abs.status, 200, abs.text);
    const id = JSON.parse(abs.text).status as string;
    const layers = listTree(path.join(stack.root, 'images', 'l')).filter((f) => f.endsWith('/tmp/stevedore-evil.txt'));
    assert.equal(layers.length, 1, 'the file is in the layer, under tmp/');
    assert.ok(!fs.existsSync('/tmp/stevedore-evil.txt'));
    assert.equal((await stack.request('DELETE', `/images/${id}`)).status, 200);
  });

  test('whiteouts become overlay whiteouts in the layer', async () => {
    const body = await makeTar([
      { name: 'dir/', type: 'directory' },
      { name: 'dir/.wh..wh..opq', body: '' },
      { name: 'dir/kept', body: 'k' },
      { name: '.wh.gone', body: '' },
    ]);
    const before = new Set(listTree(path.join(stack.root, 'images', 'l')).filter((f) => !f.includes('/')));
    const r = await importBody(stack, body, 'repo=whiteouts');
    assert.equal(r.status, 200, r.text);
    const layer = listTree(path.join(stack.root, 'images', 'l')).filter((f) => !f.includes('/') && !before.has(f));
    assert.equal(layer.length, 1);
    const dir = path.join(stack.root, 'images', 'l', layer[0]);
    const gone = fs.lstatSync(path.join(dir, 'gone'));
    assert.ok(gone.isCharacterDevice() && gone.rdev === 0);
    const attr = execFileSync('getfattr', ['-n', 'trusted.overlay.opaque', '--only-values', path.join(dir, 'dir')], { encoding: 'utf8' });
    assert.equal(attr, 'y');
    assert.ok(!fs.existsSync(path.join(dir, 'dir', '.wh..wh..opq')));
  });

  test('a crash of the image store mid-import leaves nothing behind', async () => {
    const before = storeFiles(stack);
    const good = fs.readFileSync(tarFile);
    const req = http.request({ socketPath: stack.socket, method: 'POST', path: '/v1.12/images/create?fromSrc=-&repo=crashed', headers: { 'Transfer-Encoding': 'chunked' } });
    req.on('error', () => undefined);
    req.write(good.subarray(0, 1_000_000));
    await sleep(500); // the layer is being written
    const pid = stack.process('image-store').pid!;
    process.kill(pid, 'SIGKILL');
    req.destroy();
    await stack.waitFor('/images/json', 200, 15_000);
    assert.notEqual(stack.process('image-store').pid, pid);
    assert.deepEqual(storeFiles(stack), before);
    const r = await stack.docker(['inspect', 'crashed']);
    assert.equal(r.code, 1);
  });
});
