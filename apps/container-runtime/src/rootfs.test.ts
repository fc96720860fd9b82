import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureInitLayer, lookupInLayers, overlayOptions, rootfsPaths } from './rootfs';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'rootfs-test-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = path.join(scratch, String(n++));
  fs.mkdirSync(d);
  return d;
};
const whiteout = (p: string) => execFileSync('mknod', ['-m', '0', p, 'c', '0', '0']);

test('lookupInLayers: the topmost entry; whiteouts and non-directories hide what is below; links are never followed', () => {
  const top = fresh();
  const low = fresh();
  fs.mkdirSync(path.join(low, 'etc'));
  fs.writeFileSync(path.join(low, 'etc', 'passwd'), 'x');
  fs.mkdirSync(path.join(top, 'etc'));
  assert.ok(lookupInLayers([top, low], 'etc/passwd')?.isFile());
  assert.ok(lookupInLayers([top, low], '/etc')?.isDirectory());
  assert.equal(lookupInLayers([top, low], 'etc/nothere'), undefined);
  whiteout(path.join(top, 'etc', 'passwd'));
  assert.equal(lookupInLayers([top, low], 'etc/passwd'), undefined, 'whited out');
  // A link in a layer leads nowhere: /etc -> / would otherwise find the host's /etc/passwd (or /tmp).
  const linked = fresh();
  fs.symlinkSync('/', path.join(linked, 'etc'));
  fs.symlinkSync('/', path.join(linked, 'up'));
  assert.ok(lookupInLayers([linked], 'etc')?.isSymbolicLink());
  assert.equal(lookupInLayers([linked], 'etc/passwd'), undefined);
  assert.equal(lookupInLayers([linked], 'up/tmp'), undefined);
  // A directory above a link: overlayfs does not merge them, nothing below the link shows.
  const dirAbove = fresh();
  fs.mkdirSync(path.join(dirAbove, 'etc'));
  assert.equal(lookupInLayers([dirAbove, linked], 'etc/passwd'), undefined);
});

test('the init layer: Docker 1.0\'s mount points, root\'s; directories take the image\'s attributes', () => {
  const image = fresh();
  fs.mkdirSync(path.join(image, 'etc'), { mode: 0o750 });
  fs.chmodSync(path.join(image, 'etc'), 0o750);
  fs.chownSync(path.join(image, 'etc'), 12, 34);
  const when = new Date('2014-06-09T12:00:00Z');
  fs.utimesSync(path.join(image, 'etc'), when, when);
  fs.symlinkSync('/', path.join(image, 'dev')); // hostile: hidden by the init layer's directory
  const dir = fresh();
  return ensureInitLayer(dir, [image]).then((init) => {
    assert.equal(init, rootfsPaths(dir).init);
    const st = fs.lstatSync(init);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o755]);
    for (const f of ['.dockerinit', '.dockerenv', 'dev/console', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf']) {
      const s = fs.lstatSync(path.join(init, f));
      assert.ok(s.isFile() && s.size === 0 && (s.mode & 0o7777) === 0o644, f);
    }
    for (const d of ['dev', 'dev/pts', 'dev/shm', 'proc', 'sys']) {
      const s = fs.lstatSync(path.join(init, d));
      assert.deepEqual([s.isDirectory(), s.uid, s.mode & 0o7777], [true, 0, 0o755], d);
    }
    assert.equal(fs.readlinkSync(path.join(init, 'etc', 'mtab')), '/proc/mounts');
    const etc = fs.lstatSync(path.join(init, 'etc'));
    assert.deepEqual([etc.mode & 0o7777, etc.uid, etc.gid, etc.mtime.getTime()], [0o750, 12, 34, when.getTime()]);
    assert.deepEqual(fs.readdirSync(dir), ['init'], 'nothing half-built is left beside it');
  });
});

test('a container made before init layers: the runtime\'s leftovers leave its writable layer, its own changes stay', async () => {
  const image = fresh();
  fs.mkdirSync(path.join(image, 'etc'));
  const dir = fresh();
  const upper = rootfsPaths(dir).upper;
  fs.mkdirSync(path.join(upper, 'etc'), { recursive: true });
  for (const f of ['hosts', 'hostname']) fs.writeFileSync(path.join(upper, 'etc', f), '');
  fs.writeFileSync(path.join(upper, 'etc', 'resolv.conf'), 'nameserver 1.1.1.1\n'); // not empty: the container's own
  fs.mkdirSync(path.join(upper, 'proc'));
  fs.mkdirSync(path.join(upper, 'sys'));
  fs.writeFileSync(path.join(upper, 'sys', 'mine'), '');
  await ensureInitLayer(dir, [image]);
  assert.deepEqual(fs.readdirSync(upper).sort(), ['etc', 'sys']);
  assert.deepEqual(fs.readdirSync(path.join(upper, 'etc')), ['resolv.conf']);
  // Only the runtime's own: an /etc emptied of them goes too.
  const dir2 = fresh();
  const upper2 = rootfsPaths(dir2).upper;
  fs.mkdirSync(path.join(upper2, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(upper2, 'etc', 'hosts'), '');
  await ensureInitLayer(dir2, [image]);
  assert.deepEqual(fs.readdirSync(upper2), []);
});

test('a writable layer whose /etc is a link: nothing is followed out of it', async () => {
  const outside = fresh();
  fs.writeFileSync(path.join(outside, 'hosts'), '');
  const dir = fresh();
  const upper = rootfsPaths(dir).upper;
  fs.mkdirSync(upper);
  fs.symlinkSync(outside, path.join(upper, 'etc'));
  await ensureInitLayer(dir, [fresh()]);
  assert.ok(fs.existsSync(path.join(outside, 'hosts')), 'the empty file the link leads to is untouched');
  assert.ok(fs.lstatSync(path.join(upper, 'etc')).isSymbolicLink());
});

test('overlay options: the init layer first, relative to the layers\' directory; too long a chain is refused before mounting', () => {
  const root = fresh();
  const layers = Array.from({ length: 124 }, (_, i) => path.join(root, 'images', 'l', `l${String(i).padStart(6, '0')}`));
  const paths = rootfsPaths(path.join(root, 'containers', 'c'.repeat(64)));
  const { options, cwd } = overlayOptions(paths, layers);
  assert.equal(cwd, path.join(root, 'images', 'l'));
  const lower = options.split(',')[0].slice('lowerdir='.length).split(':');
  assert.equal(lower[0], `../../containers/${'c'.repeat(64)}/init`);
  assert.equal(lower.length, 125);
  assert.ok(options.length < 1400, `${options.length} bytes`);
  const scattered = layers.map((l, i) => path.join(root, `p${i}`.repeat(20), path.basename(l)));
  assert.throws(() => overlayOptions(paths, scattered), /mount options \d+ bytes long/);
  assert.throws(() => overlayOptions(paths, []), /no layers/);
});
