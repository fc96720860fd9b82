import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { containers } from '@stevedore/contracts';
import { Execs } from './execs';
import { containerId, testRuntime, type FakeImage } from './test-runtime';

const busybox: FakeImage = { id: 'b'.repeat(64), names: ['busybox:latest'], layers: [] };

test('exec records are pruned in bulk: once 64 past the 256 ended ones kept, the oldest ended go; the newest and those not yet run stay', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('e1');
    rt.record(id, '/busy', busybox, 'running');
    const execs = new Execs({ db: rt.db, paths: rt.paths, runner: rt.runner, outbox: rt.outbox, attachments: rt.attachments, hostCaps: [], log: rt.log });
    const create = () => execs.create({ container: id, config: containers.ExecConfig.fromPartial({ cmd: ['true'] }) });
    const ended: string[] = [];
    for (let i = 0; i < 320; i++) {
      const e = create();
      const exit = path.join(rt.paths.execDir(e), 'exit.json');
      fs.writeFileSync(exit, JSON.stringify({ exitCode: 0, finishedAt: '', pid: 0 }));
      fs.utimesSync(exit, 1_000_000 + i, 1_000_000 + i); // ended in the order made
      ended.push(e);
    }
    const records = () => fs.readdirSync(rt.paths.execsDir(id)).length;
    const exists = (e: string) => fs.existsSync(rt.paths.execDir(e));
    // Up to 320 records, a create reads none of them.
    const waiting = create();
    assert.equal(records(), 321);
    // Past it, the oldest ended go down to 256; one not yet run stays.
    const last = create();
    assert.equal(records(), 256 + 2);
    assert.deepEqual([exists(ended[0]), exists(ended[63]), exists(ended[64]), exists(ended[319]), exists(waiting), exists(last)], [false, false, true, true, true, true]);
  } finally {
    await rt.dispose();
  }
});
