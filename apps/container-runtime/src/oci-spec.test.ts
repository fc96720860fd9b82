import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeWorkingDir, resolveUser, USER_DB_MAX_BYTES, workingDir } from './oci-spec';

function withRoot(fn: (rootfs: string, outside: string) => void): void {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ocispec-'));
  const rootfs = path.join(work, 'rootfs');
  const outside = path.join(work, 'outside');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(outside);
  try {
    fn(rootfs, outside);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

test('the user database is read inside the root: links to the host lead into it', () => {
  withRoot((rootfs, outside) => {
    fs.writeFileSync(path.join(outside, 'passwd'), 'evil:x:0:0::/:/bin/sh\n');
    fs.symlinkSync(path.join(outside, 'passwd'), path.join(rootfs, 'etc', 'passwd'));
    assert.throws(() => resolveUser(rootfs, 'evil'), /Unable to find user evil: no matching entries in passwd file/);
    // The same path inside the root is what the link names.
    fs.mkdirSync(path.join(rootfs, outside), { recursive: true });
    fs.writeFileSync(path.join(rootfs, outside, 'passwd'), 'app:x:1000:1001::/home/app:/bin/sh\n');
    fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'app:x:1001:\nextra:x:2000:app\n');
    assert.deepEqual(resolveUser(rootfs, 'app'), { uid: 1000, gid: 1001, additionalGids: [2000], home: '/home/app' });
    fs.rmSync(path.join(rootfs, 'etc', 'passwd'));
    fs.symlinkSync(`${'../'.repeat(10)}${path.join(outside, 'passwd').slice(1)}`, path.join(rootfs, 'etc', 'passwd'));
    assert.equal(resolveUser(rootfs, 'app').uid, 1000, 'a relative link climbing out stops at the root');
  });
});

test('a FIFO, a device or an oversized file as the user database fails without blocking', () => {
  withRoot((rootfs) => {
    assert.deepEqual(resolveUser(rootfs, ''), { uid: 0, gid: 0, additionalGids: [], home: '/' }, 'no passwd: root');
    execFileSync('mkfifo', [path.join(rootfs, 'etc', 'passwd')]);
    assert.throws(() => resolveUser(rootfs, ''), /\/etc\/passwd is not a regular file/);
    fs.rmSync(path.join(rootfs, 'etc', 'passwd'));
    fs.symlinkSync('/dev/zero', path.join(rootfs, 'etc', 'group'));
    fs.mkdirSync(path.join(rootfs, 'dev'));
    execFileSync('mknod', [path.join(rootfs, 'dev', 'zero'), 'c', '1', '5']);
    assert.throws(() => resolveUser(rootfs, '0:0'), /\/etc\/group is not a regular file/);
    fs.rmSync(path.join(rootfs, 'etc', 'group'));
    fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), Buffer.alloc(USER_DB_MAX_BYTES + 1, 'a'));
    assert.throws(() => resolveUser(rootfs, ''), /\/etc\/passwd is larger than 4194304 bytes/);
  });
});

test('WorkingDir: cleaned, made inside the root through its links, never on the host', () => {
  assert.equal(workingDir({}), '/');
  assert.equal(workingDir({ WorkingDir: '../../../tmp/x/' }), '/tmp/x');
  assert.equal(workingDir({ WorkingDir: 'rel/./a/../b' }), '/rel/b');
  withRoot((rootfs, outside) => {
    makeWorkingDir(rootfs, { WorkingDir: '../../../../../../made' });
    assert.ok(fs.statSync(path.join(rootfs, 'made')).isDirectory());
    assert.equal(fs.statSync(path.join(rootfs, 'made')).mode & 0o7777, 0o755);
    // A link to a host directory: the directory it names inside the root.
    fs.mkdirSync(path.join(rootfs, outside), { recursive: true });
    fs.symlinkSync(outside, path.join(rootfs, 'work'));
    makeWorkingDir(rootfs, { WorkingDir: '/work/x' });
    assert.ok(fs.statSync(path.join(rootfs, outside, 'x')).isDirectory());
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing on the host');
    // Leading nowhere inside the root, or a file: refused, saying what is in the way.
    fs.rmSync(path.join(rootfs, outside), { recursive: true });
    assert.throws(() => makeWorkingDir(rootfs, { WorkingDir: '/work/y' }), /Cannot mkdir: \/work\/y: \/work is not a directory/);
    fs.writeFileSync(path.join(rootfs, 'file'), '');
    assert.throws(() => makeWorkingDir(rootfs, { WorkingDir: '/file' }), /Cannot mkdir: \/file is not a directory/);
    assert.throws(() => makeWorkingDir(rootfs, { WorkingDir: '/file/sub' }), /Cannot mkdir: \/file\/sub: \/file is not a directory/);
    assert.deepEqual(fs.readdirSync(outside), []);
  });
});
