// The monitors' sockets fit a unix socket address (108 bytes) whatever the
// run directory's length: a container's and an exec's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ContainerPaths } from './container-paths';

test('state and exec directories: under the run directory when their sockets fit, under /run otherwise, the same choice for an exec and its container', () => {
  const id = 'a'.repeat(64);
  const execId = id.slice(0, 16) + 'b'.repeat(48);
  for (let length = 10; length <= 120; length++) {
    const runDir = `/${'r'.repeat(length - 1)}`;
    const paths = new ContainerPaths(`/data-${length}`, runDir);
    for (const socket of [path.join(paths.stateDir(id), 'console.sock'), path.join(paths.execDir(execId), 'console.sock'), path.join(paths.execDir(execId), 'attach.sock')]) {
      assert.ok(socket.length < 108, `${socket.length}: ${socket}`);
    }
    assert.equal(path.dirname(paths.execDir(execId)), paths.execsDir(id));
  }
  assert.equal(new ContainerPaths('/d', '/run/s').execDir(execId), `/run/s/x/${id.slice(0, 12)}/${'b'.repeat(16)}`);
});
