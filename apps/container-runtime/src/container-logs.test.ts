import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { containers } from '@stevedore/contracts';
import { ContainerLogs, stampMilli } from './container-logs';
import { containerId, testRuntime, type FakeImage } from './test-runtime';

const busybox: FakeImage = { id: 'b'.repeat(64), names: ['busybox:latest'], layers: [] };
const line = (log: string, stream: 'stdout' | 'stderr', time = '2014-06-01T10:20:30.456Z') => `${JSON.stringify({ log, stream, time })}\n`;

test('the log is replayed from its rotated files on, one message per run of a stream, filtered and stamped as asked', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('d1');
    rt.record(id, '/chatty', busybox, 'exited');
    const base = rt.paths.logFile(id);
    fs.writeFileSync(`${base}.2`, line('one\n', 'stdout'));
    fs.writeFileSync(`${base}.1`, line('two\n', 'stdout') + line('oops\n', 'stderr'));
    fs.writeFileSync(base, line('three\n', 'stdout') + 'not json\n' + line('four\n', 'stdout'));
    const logs = new ContainerLogs(rt.db, rt.paths, 2);
    const replay = async (wanted: { stdout: boolean; stderr: boolean; timestamps: boolean }) => {
      const out: containers.Output[] = [];
      await logs.stream(id, { ...wanted, follow: true }, async (o) => void out.push(o), new AbortController().signal);
      return out.map((o) => [o.stream, Buffer.from(o.data).toString()]);
    };
    assert.deepEqual(await replay({ stdout: true, stderr: true, timestamps: false }), [[1, 'one\ntwo\n'], [2, 'oops\n'], [1, 'three\nfour\n']]);
    assert.deepEqual(await replay({ stdout: false, stderr: true, timestamps: true }), [[2, '[Jun  1 10:20:30.456] oops\n']]);
    assert.equal(stampMilli('2014-12-25T01:02:03.004Z'), 'Dec 25 01:02:03.004');
  } finally {
    await rt.dispose();
  }
});

test('empty entries (of the monitor\'s shape or another writer\'s) before a switch of stream do not hold the replay', async () => {
  const rt = testRuntime([busybox]);
  try {
    const id = containerId('d2');
    rt.record(id, '/quiet', busybox, 'exited');
    const time = '2026-12-04T03:24:37.123456789Z';
    fs.writeFileSync(rt.paths.logFile(id), `{"log":"","stream":"stdout","time":"${time}"}\n{"log":"","stream":"stdout"}\n{"log":"err\\n","stream":"stderr","time":"${time}"}\n{"log":"out\\n","stream":"stdout","time":"${time}"}\n`);
    const logs = new ContainerLogs(rt.db, rt.paths, 2);
    const out: containers.Output[] = [];
    const replay = logs.stream(id, { stdout: true, stderr: true, timestamps: false, follow: false }, async (o) => void out.push(o), new AbortController().signal);
    const finished = await Promise.race([replay.then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]);
    assert.equal(finished, true, 'the replay ended');
    assert.deepEqual(out.map((o) => [o.stream, Buffer.from(o.data).toString()]), [[2, 'err\n'], [1, 'out\n']]);
  } finally {
    await rt.dispose();
  }
});
