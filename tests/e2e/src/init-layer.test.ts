// The init layer (Docker 1.0's `<id>-init`): the runtime's mount points sit in
// a layer of each container's own between the image and the writable layer,
// so that diff and commit show only what the container did, export still has
// them, hostile images (/etc a link to /, /etc/hosts a FIFO or a link) run
// with a clean diff, containers made before init layers are cleaned at their
// next mount, and a chain of 124 layers still mounts with it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { busyboxRootfsTar, makeTar } from './images-fixtures';
import { shortTempDir, type Stack, startStackWithBusybox, stopStack } from './harness';

interface Entry {
  header: tar.Header;
  body: Buffer;
}

/** Every entry of a tar (test archives are small), in order. */
async function tarEntries(data: Buffer): Promise<Entry[]> {
  const out: Entry[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      out.push({ header, body: Buffer.concat(chunks) });
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    extract.end(data);
  });
  return out;
}

/** A tar of `dir` (numeric owners, as the busybox fixture). */
function tarOf(dir: string, file: string): string {
  execFileSync('tar', ['-C', dir, '--numeric-owner', '-cf', file, '.']);
  return file;
}

describe('the init layer', () => {
  let stack: Stack;
  let work: string;
  const containerDir = (id: string) => path.join(stack.root, 'containers', id);
  const idOf = async (name: string) => (await stack.docker(['inspect', '-f', '{{.Id}}', name])).stdout.trim();
  const diffOf = async (name: string) => {
    const r = await stack.docker(['diff', name]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  const rawChanges = async (name: string) => {
    const r = await stack.request('GET', `/v1.12/containers/${name}/changes`);
    assert.equal(r.status, 200, r.text);
    return JSON.parse(r.text);
  };
  /** The entries of an image's own layer, from GET /images/ID/get (Docker 1.0's layout: <id>/layer.tar). */
  const layerOf = async (image: string): Promise<Entry[]> => {
    const id = (await stack.docker(['inspect', '-f', '{{.Id}}', image])).stdout.trim().replace(/^sha256:/, '');
    const saved = await stack.request('GET', `/v1.12/images/${id}/get`);
    assert.equal(saved.status, 200, saved.text);
    const layer = (await tarEntries(saved.body)).find((e) => e.header.name === `${id}/layer.tar`);
    assert.ok(layer, 'the saved image has its layer.tar');
    return tarEntries(layer.body);
  };

  before(async () => {
    stack = await startStackWithBusybox();
    work = shortTempDir('initl-');
  });
  after(async () => {
    await stopStack(stack);
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('a container that changes nothing has an empty diff (CLI and GET /changes), and an empty writable layer', async () => {
    const r = await stack.docker(['run', '--name', 'idle', 'busybox', 'true']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await diffOf('idle'), []);
    assert.deepEqual(await rawChanges('idle'), []);
    const id = await idOf('idle');
    assert.equal((await stack.docker(['wait', 'idle'])).code, 0);
    assert.deepEqual(fs.readdirSync(path.join(containerDir(id), 'upper')), [], 'the runtime created nothing in the writable layer');
    // The init layer holds the mount points, owned by root; the image's /etc keeps its attributes there.
    const init = path.join(containerDir(id), 'init');
    const st = fs.statSync(init);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o755]);
    for (const f of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv', '.dockerinit', 'dev/console']) assert.equal(fs.statSync(path.join(init, f)).size, 0, f);
    for (const d of ['dev', 'dev/pts', 'dev/shm', 'proc', 'sys']) assert.ok(fs.statSync(path.join(init, d)).isDirectory(), d);
    assert.equal(fs.readlinkSync(path.join(init, 'etc/mtab')), '/proc/mounts');
    // A second run of the same container changes nothing either.
    assert.equal((await stack.docker(['start', '-a', 'idle'])).code, 0);
    assert.deepEqual(await diffOf('idle'), []);
  });

  test('a container inside which the runtime\'s files are read and written still has an empty diff', async () => {
    // /etc/hosts and friends are the engine's files, bind-mounted over the init layer's: writing them changes no layer.
    const r = await stack.docker(['run', '--name', 'reader', 'busybox', 'sh', '-c', 'cat /etc/hosts /etc/hostname /etc/resolv.conf >/dev/null && echo 10.0.0.9 extra >> /etc/hosts && test -e /.dockerenv && test -L /etc/mtab && mount | grep -q " /proc "']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await diffOf('reader'), []);
  });

  test('a file written in /etc: the diff is C /etc and A /etc/newfile, and a commit carries only those', async () => {
    const r = await stack.docker(['run', '--name', 'etcwriter', 'busybox', 'sh', '-c', 'echo fresh > /etc/newfile']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await diffOf('etcwriter'), ['C /etc', 'A /etc/newfile']);
    assert.deepEqual(await rawChanges('etcwriter'), [{ Path: '/etc', Kind: 0 }, { Path: '/etc/newfile', Kind: 1 }]);
    const c = await stack.docker(['commit', 'etcwriter', 'etcsnap:v1']);
    assert.equal(c.code, 0, c.stderr);
    const entries = await layerOf('etcsnap:v1');
    assert.deepEqual(entries.map((e) => e.header.name), ['etc/', 'etc/newfile'], 'no etc/hosts, etc/hostname, etc/resolv.conf, .dockerenv, dev, proc or sys');
    assert.equal(entries[1].body.toString(), 'fresh\n');
    // /etc keeps the image's attributes in the commit (the init layer's /etc took them from the image).
    const image = (await tarEntries(fs.readFileSync(busyboxRootfsTar()))).find((e) => e.header.name === './etc/')!;
    assert.deepEqual([entries[0].header.mode, entries[0].header.uid, entries[0].header.gid], [image.header.mode, image.header.uid, image.header.gid]);
    // The committed image runs, with the engine's own /etc files and the committed one.
    const run = await stack.docker(['run', '--name', 'fromsnap', 'etcsnap:v1', 'sh', '-c', 'cat /etc/newfile; cat /etc/hostname; grep -c localhost /etc/hosts']);
    assert.equal(run.code, 0, run.stderr);
    const [fresh, hostname, localhost] = run.stdout.trim().split('\n');
    assert.equal(fresh, 'fresh');
    assert.equal(hostname, (await idOf('fromsnap')).slice(0, 12));
    assert.ok(Number(localhost) >= 1);
    assert.deepEqual(await diffOf('fromsnap'), []);
  });

  test('export has the init layer\'s files, as Docker 1.0\'s export had them', async () => {
    const file = path.join(work, 'idle.tar');
    const r = await stack.docker(['export', '-o', file, 'idle']);
    assert.equal(r.code, 0, r.stderr);
    const entries = new Map((await tarEntries(fs.readFileSync(file))).map((e) => [e.header.name.replace(/^\.?\//, '').replace(/\/$/, ''), e]));
    for (const f of ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv', '.dockerinit', 'dev/console']) {
      assert.equal(entries.get(f)?.header.type, 'file', f);
      assert.equal(entries.get(f)?.header.size, 0, f);
    }
    for (const d of ['dev', 'dev/pts', 'dev/shm', 'proc', 'sys', 'etc']) assert.equal(entries.get(d)?.header.type, 'directory', d);
    assert.equal(entries.get('etc/mtab')?.header.linkname, '/proc/mounts');
    assert.ok(entries.has('etc/passwd') && entries.has('bin/busybox'), 'the image\'s files are there too');
  });

  test('hostile images: /etc a link to /, /etc/hosts a FIFO, /etc/hostname and /etc/resolv.conf links out: they run, with a clean diff', async () => {
    const root = path.join(work, 'hostile');
    fs.mkdirSync(root);
    execFileSync('tar', ['-C', root, '-xf', busyboxRootfsTar()]);
    fs.rmSync(path.join(root, 'etc'), { recursive: true });
    fs.symlinkSync('/', path.join(root, 'etc'));
    const imported = await stack.docker(['import', tarOf(root, path.join(work, 'etc-root.tar')), 'etcroot:v1']);
    assert.equal(imported.code, 0, imported.stderr);
    const r = await stack.docker(['run', '--name', 'etcroot', 'etcroot:v1', 'sh', '-c', 'cat /etc/hostname; ls /etc']);
    assert.equal(r.code, 0, r.stderr);
    const [hostname, ...listing] = r.stdout.trim().split('\n');
    assert.equal(hostname, (await idOf('etcroot')).slice(0, 12));
    // The init layer's real /etc hides the image's link: the runtime's files were mounted there, not in /.
    assert.deepEqual(listing.sort(), ['hostname', 'hosts', 'mtab', 'resolv.conf']);
    assert.deepEqual(await diffOf('etcroot'), []);
    assert.deepEqual(await rawChanges('etcroot'), []);
    const etcRoot = await stack.docker(['run', '--rm', 'etcroot:v1', 'sh', '-c', 'test ! -e /hosts && test ! -e /hostname && test ! -e /resolv.conf']);
    assert.equal(etcRoot.code, 0, 'nothing landed in / through the image\'s link');

    // /etc a real directory, the runtime's files hostile within it.
    const root2 = path.join(work, 'hostile2');
    fs.mkdirSync(root2);
    execFileSync('tar', ['-C', root2, '-xf', busyboxRootfsTar()]);
    execFileSync('mkfifo', [path.join(root2, 'etc', 'hosts')]);
    fs.symlinkSync('/etc/shadow', path.join(root2, 'etc', 'hostname'));
    fs.symlinkSync('../../../../../../etc/passwd', path.join(root2, 'etc', 'resolv.conf'));
    fs.symlinkSync('/', path.join(root2, 'etc', 'mtab'));
    const imported2 = await stack.docker(['import', tarOf(root2, path.join(work, 'etc-files.tar')), 'etcfiles:v1']);
    assert.equal(imported2.code, 0, imported2.stderr);
    const r2 = await stack.docker(['run', '--name', 'etcfiles', 'etcfiles:v1', 'sh', '-c', 'grep -c localhost /etc/hosts; cat /etc/hostname; grep -c nameserver /etc/resolv.conf; test -f /etc/hosts && readlink /etc/mtab']);
    assert.equal(r2.code, 0, r2.stderr);
    const [localhost, hostname2, nameservers, mtab] = r2.stdout.trim().split('\n');
    assert.ok(Number(localhost) >= 1 && Number(nameservers) >= 1);
    assert.equal(hostname2, (await idOf('etcfiles')).slice(0, 12));
    assert.equal(mtab, '/proc/mounts');
    assert.deepEqual(await diffOf('etcfiles'), []);
  });

  test('a container made before init layers: its runtime files are left out until its next mount, which takes them out of its layer', async () => {
    const r = await stack.docker(['run', '--name', 'legacy', 'busybox', 'sh', '-c', 'echo mine > /etc/own']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await stack.docker(['wait', 'legacy'])).code, 0);
    const dir = containerDir(await idOf('legacy'));
    // What the runtime left in the writable layer when there was no init layer: empty mount point files in /etc, an empty /proc.
    fs.rmSync(path.join(dir, 'init'), { recursive: true });
    for (const f of ['hosts', 'hostname', 'resolv.conf']) fs.writeFileSync(path.join(dir, 'upper', 'etc', f), '');
    fs.mkdirSync(path.join(dir, 'upper', 'proc'), { mode: 0o755 });
    assert.deepEqual(await diffOf('legacy'), ['C /etc', 'A /etc/own']);
    const c = await stack.docker(['commit', 'legacy', 'legacysnap:v1']);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual((await layerOf('legacysnap:v1')).map((e) => e.header.name), ['etc/', 'etc/own']);
    // Its next start mounts it with an init layer: the runtime's leftovers leave the writable layer, the container's own file stays.
    const again = await stack.docker(['start', '-a', 'legacy']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await stack.docker(['wait', 'legacy'])).code, 0);
    assert.ok(fs.existsSync(path.join(dir, 'init', 'etc', 'hosts')));
    assert.deepEqual(fs.readdirSync(path.join(dir, 'upper')).sort(), ['etc']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'upper', 'etc')).sort(), ['own']);
    assert.deepEqual(await diffOf('legacy'), ['C /etc', 'A /etc/own']);
  });

  test('a chain of 124 layers (busybox under 123 empty ones) runs with its init layer, diff empty', async () => {
    const base = fs.readFileSync(busyboxRootfsTar());
    const empty = await makeTar([]);
    const pack = tar.pack();
    const ids: string[] = [];
    for (let i = 0; i < 124; i++) {
      const id = createHash('sha256').update(`init-deep-${i}`).digest('hex');
      const meta = { id, ...(i ? { parent: ids[i - 1] } : {}), created: '2014-06-09T12:00:00.000000000Z', container_config: { Cmd: null }, config: { Cmd: ['true'] }, os: 'linux' };
      const layer = i ? empty : base;
      pack.entry({ name: `${id}/VERSION`, size: 3 }, '1.0');
      pack.entry({ name: `${id}/json` }, JSON.stringify(meta));
      pack.entry({ name: `${id}/layer.tar`, size: layer.length }, layer);
      ids.push(id);
    }
    pack.entry({ name: 'repositories' }, JSON.stringify({ initdeep: { '124': ids[123] } }));
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
    const loaded = await stack.request('POST', '/v1.12/images/load', { body: Buffer.concat(chunks) });
    assert.equal(loaded.status, 200, loaded.text);
    const r = await stack.docker(['run', '--name', 'deep', 'initdeep:124', 'sh', '-c', 'cat /etc/hostname']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), (await idOf('deep')).slice(0, 12));
    assert.deepEqual(await diffOf('deep'), []);
  });
});
