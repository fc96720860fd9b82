import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeTree, RootDir } from './root-dir';

/** A root and, beside it, a host directory that links in the root aim at. */
function scene(): { root: string; host: string; done: () => void } {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'root-dir-'));
  const root = path.join(top, 'root');
  const host = path.join(top, 'host');
  fs.mkdirSync(root);
  fs.mkdirSync(host);
  fs.writeFileSync(path.join(host, 'secret'), 'host secret\n');
  return { root, host, done: () => fs.rmSync(top, { recursive: true, force: true }) };
}

test('links are followed inside the root: absolute, relative and through ..', () => {
  const { root, host, done } = scene();
  try {
    fs.symlinkSync(host, path.join(root, 'abs'));
    fs.symlinkSync(`${'../'.repeat(10)}${host.slice(1)}`, path.join(root, 'rel'));
    RootDir.with(root, (r) => assert.throws(() => r.mkdirAll('abs/made', 0o755), /Not a directory/, 'a link to nothing inside'));
    fs.mkdirSync(path.join(root, host), { recursive: true }); // the host's path, inside the root
    RootDir.with(root, (r) => {
      assert.equal(r.readFile('abs/secret', 100), undefined, 'the host file is not there, seen from the root');
      assert.equal(r.readFile('rel/secret', 100), undefined);
      r.mkdirAll('abs/made', 0o755);
      r.mkdirAll('rel/made2', 0o755);
      assert.equal(r.hostPathOf('abs/made'), path.join(fs.realpathSync(root), host, 'made'));
      assert.ok(r.hostPathOf('../../..').startsWith(fs.realpathSync(root)), '.. stops at the root');
    });
    assert.deepEqual(fs.readdirSync(host), ['secret'], 'nothing made on the host');
  } finally {
    done();
  }
});

test('readFile refuses a FIFO, a device, a directory and a large file without blocking', () => {
  const { root, done } = scene();
  try {
    fs.mkdirSync(path.join(root, 'etc'));
    execFileSync('mkfifo', [path.join(root, 'etc', 'fifo')]);
    execFileSync('mknod', [path.join(root, 'etc', 'null'), 'c', '1', '3']);
    fs.writeFileSync(path.join(root, 'etc', 'big'), Buffer.alloc(2048));
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0::/:/bin/sh\n');
    fs.symlinkSync('/etc/passwd', path.join(root, 'etc', 'link'));
    RootDir.with(root, (r) => {
      const started = Date.now();
      assert.throws(() => r.readFile('etc/fifo', 1024), /not a regular file/);
      assert.throws(() => r.readFile('etc/null', 1024), /not a regular file/);
      assert.throws(() => r.readFile('etc', 1024), /not a regular file/);
      assert.throws(() => r.readFile('etc/big', 1024), /larger than 1024 bytes/);
      assert.ok(Date.now() - started < 1000, 'no open of the FIFO blocked');
      assert.equal(r.readFile('etc/link', 1024)?.toString(), 'root:x:0:0::/:/bin/sh\n', 'an absolute link read inside the root');
      assert.equal(r.readFile('etc/missing', 1024), undefined);
    });
  } finally {
    done();
  }
});

test('remove takes a link away, never what it points at', () => {
  const { root, host, done } = scene();
  try {
    fs.symlinkSync(host, path.join(root, 'l'));
    fs.mkdirSync(path.join(root, 'd'));
    fs.symlinkSync(host, path.join(root, 'd', 'inner'));
    RootDir.with(root, (r) => {
      r.remove('l');
      r.remove('d');
      r.remove('nothing/here');
    });
    assert.deepEqual(fs.readdirSync(root), []);
    assert.deepEqual(fs.readdirSync(host), ['secret']);
  } finally {
    done();
  }
});

test('a directory swapped for a link to the host in a tight loop never lets a write out', async () => {
  const { root, host, done } = scene();
  try {
    fs.mkdirSync(path.join(root, 'd'));
    // Another process (a container's, say) swaps d for a link to the host, over and over.
    const swapper = spawn('sh', ['-c', `cd ${root}; end=$(($(date +%s)+3)); while [ $(date +%s) -lt $end ]; do mv d d.x; ln -s ${host} d; rm d; mv d.x d; done`], { stdio: 'ignore' });
    const ended = new Promise((resolve) => swapper.on('exit', resolve));
    let written = 0;
    const r = RootDir.open(root);
    try {
      for (let i = 0; i < 20_000 && swapper.exitCode === null; i++) {
        try {
          fs.closeSync(r.create(`d/f${i}`, 0o644));
          written++;
        } catch {
          // d was a link to nothing inside the root at that moment: refused, as it should be.
        }
        if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      r.close();
    }
    await ended;
    assert.ok(written > 0, 'some writes landed while d was a directory');
    assert.deepEqual(fs.readdirSync(host), ['secret'], 'no write reached the host');
  } finally {
    done();
  }
});

test('removeTree takes away a tree far deeper than PATH_MAX (5,000 levels), which fs.rm cannot', async () => {
  const { root, done } = scene();
  try {
    const tree = path.join(root, 'deep');
    // Made one level at a time from the last one's descriptor, as a container's `mkdir a; cd a` loop would.
    execFileSync('python3', ['-c', `import os\nfd=os.open(${JSON.stringify(root)},os.O_RDONLY)\nos.mkdir('deep',dir_fd=fd)\nfd=os.open('deep',os.O_RDONLY,dir_fd=fd)\nfor i in range(5000):\n  os.mkdir('a',dir_fd=fd)\n  fd=os.open('a',os.O_RDONLY,dir_fd=fd)\nopen(os.open('f',os.O_CREAT|os.O_WRONLY,0o644,dir_fd=fd),'w').write('x')`]);
    await assert.rejects(fs.promises.rm(tree, { recursive: true, force: true }), 'fs.rm gives up on it');
    removeTree(tree);
    assert.deepEqual(fs.readdirSync(root), []);
  } finally {
    done();
  }
});

test('a name longer than the buffer is refused whole, never cut to a shorter name', () => {
  const { root, done } = scene();
  try {
    RootDir.with(root, (r) => {
      const prefix = 'a'.repeat(4094);
      // 4,094 bytes and a 3-byte character: copied into a 4,096-byte buffer it would come out as the prefix.
      assert.throws(() => r.mkdir(`${prefix}€`, 0o755), (err: NodeJS.ErrnoException) => err.code === 'ENAMETOOLONG');
      assert.throws(() => r.utimes('x', new Date(NaN), new Date(0)), /finite times/);
    });
    assert.deepEqual(fs.readdirSync(root), []);
  } finally {
    done();
  }
});
