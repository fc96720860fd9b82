import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ManagedProcess } from './managed-process';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a child that fails its health check for the set time is killed outright (stopped ones too) and restarted; a good answer starts the count over', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'managed-'));
  const warnings: string[] = [];
  const log = { warn: (_: unknown, msg: string) => warnings.push(msg) } as unknown as ConstructorParameters<typeof ManagedProcess>[2];
  const p = new ManagedProcess(
    { name: 'sleeper', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], env: process.env, logFile: path.join(dir, 'sleeper.log'), healthRestartAfterMs: 300 },
    () => undefined,
    log,
  );
  try {
    p.start();
    const first = p.pid!;
    p.setHealth(true);
    p.setHealth(false);
    await new Promise((r) => setTimeout(r, 200));
    p.setHealth(true); // recovered before the time: the count starts over
    p.setHealth(false);
    await new Promise((r) => setTimeout(r, 200));
    p.setHealth(false);
    assert.equal(p.pid, first, 'failing for less than the set time since the last good answer');
    process.kill(first, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 150));
    p.setHealth(false);
    for (let i = 0; i < 100 && (!p.pid || p.pid === first); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(p.pid && p.pid !== first, 'a new child');
    assert.equal(p.state.restarts, 1);
    assert.match(p.state.lastExit ?? '', /^killed: no good health check for \d+ ms, signal SIGKILL$/, 'killed as by a crash: a stop would have the container runtime stop its containers');
    assert.ok(!alive(first), 'the stopped child is gone');
    assert.match(warnings[0], /failed its health check for \d+ ms/);
  } finally {
    await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
