import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runForReport } from './shim';

/** The signals a process ignores and blocks, from its status. */
function signalMasks(status: string): { ignored: bigint; blocked: bigint } {
  const field = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)`, 'm').exec(status)?.[1] ?? 'ff'}`);
  return { ignored: field('SigIgn'), blocked: field('SigBlk') };
}

test('a spawned program: its report, its exit code, and it is reaped', async () => {
  const r = await runForReport('/bin/sh', ['-c', 'echo ok 42; exit 3']);
  assert.equal(r.stdout, 'ok 42\n');
  assert.equal(r.code, 3);
  // Reaped: no zombie is left under that pid.
  assert.throws(() => process.kill(r.pid, 0), /ESRCH/);
});

test('a spawned program gets only stdin, stdout and stderr of ours, nothing blocked, SIGPIPE not ignored', async () => {
  const r = await runForReport('/bin/sh', ['-c', 'ls /proc/$$/fd | sort -n | tr "\\n" " "; echo; cat /proc/$$/status']);
  const [fds, ...status] = r.stdout.split('\n');
  assert.equal(fds.trim(), '0 1 2');
  const masks = signalMasks(status.join('\n'));
  assert.equal(masks.blocked, 0n);
  // Not even the C library's own (32 and 33), which posix_spawn would leave ignored.
  assert.equal(masks.ignored, 0n);
  assert.equal(r.code, 0);
});

test('a program that does not report in time is killed and reaped', async () => {
  const t = Date.now();
  const r = await runForReport('/bin/sh', ['-c', 'exec sleep 30'], 200);
  assert.equal(r.code, 128 + 9);
  assert.ok(Date.now() - t < 5000, 'it was not waited for');
  assert.throws(() => process.kill(r.pid, 0), /ESRCH/);
});

test('a program that closes its stdout but goes on running is killed at the bound, then reaped', async () => {
  const t = Date.now();
  const r = await runForReport('/bin/sh', ['-c', 'echo partial; exec >&-; exec sleep 30'], 300);
  assert.equal(r.stdout, 'partial\n');
  assert.equal(r.code, 128 + 9);
  assert.ok(Date.now() - t < 5000, 'it was not waited for');
  assert.throws(() => process.kill(r.pid, 0), /ESRCH/);
});

test('a missing program is an error, and bad arguments are refused before anything runs', async () => {
  await assert.rejects(runForReport('/nonexistent/monitor', []), { code: 'ENOENT', message: /\/nonexistent\/monitor: No such file or directory/ });
  await assert.rejects(runForReport('/bin/sh', ['-c', 'echo a\0b']), /NUL/);
  await assert.rejects(runForReport('/bin/sh', Array.from({ length: 80 }, () => 'x')), /1 to 64/);
  // Nothing was left open by the refusals: the runtime's descriptors are as before.
  const before = fs.readdirSync('/proc/self/fd').length;
  for (let i = 0; i < 50; i++) await assert.rejects(runForReport('/nonexistent/monitor', []));
  assert.equal(fs.readdirSync('/proc/self/fd').length, before);
});

test('descriptors the runtime holds without close-on-exec do not reach the program', () => {
  // node opens its own with close-on-exec: a child node given an extra pipe (its fd 3, inherited) is the case to try.
  const script = `require(${JSON.stringify(path.join(__dirname, 'shim.js'))}).runForReport('/bin/sh', ['-c', 'ls /proc/$$/fd | sort -n | tr "\\n" " "']).then((r) => process.stdout.write(require('fs').readdirSync('/proc/self/fd').includes('3') + ' ' + r.stdout))`;
  const r = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.stdout.trim(), 'true 0 1 2');
});
