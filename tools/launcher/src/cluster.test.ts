// The cluster's layout refuses a root another local user could have
// prepared (a CA or a password of theirs, links to root's files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clusterLayout } from './cluster';

test('a cluster root: made private, kept across ups; one others can write, or a link, is refused', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-root-'));
  try {
    const root = path.join(base, 'c');
    const first = clusterLayout(root, 3, 2);
    assert.equal(fs.statSync(root).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(root, 'cluster.json')).mode & 0o777, 0o600);
    assert.deepEqual(first.nodes.map((n) => n.name), ['node-1', 'node-2', 'node-3']);
    assert.match(first.subnet, /^10\.214\.\d+\.0\/24$/);
    assert.equal(clusterLayout(root, 3, 2).redisPassword, first.redisPassword, 'the password is kept');

    const open = path.join(base, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    assert.throws(() => clusterLayout(open, 1, 1), /no one else can write/);
    const link = path.join(base, 'link');
    fs.symlinkSync(root, link);
    assert.throws(() => clusterLayout(link, 1, 1), /must be a directory/);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
