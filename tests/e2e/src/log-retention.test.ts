// Container logs kept as users expect: by default at least the last 100 MiB
// of output, counted in the output's bytes (not the JSON's), so a 50 MiB
// output of short lines comes back whole through docker logs; rotation stays
// on and configurable, a file's size on disk is bounded even for output
// that escapes badly, and the files stay json-file lines a log shipper reads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCommand, type Stack, startStackWithBusybox, stopStack } from './harness';

const LINE = '0123456789012345678901234567890123456789abcdefghi\n'; // 50 bytes
const OUTPUT = 50 * 1024 * 1024;

/** The log's files, oldest first, and each one's output bytes and size; every line checked as json-file. */
function logFiles(stack: Stack, id: string): Array<{ name: string; output: number; size: number }> {
  const dir = path.join(stack.root, 'containers', id);
  const names = fs.readdirSync(dir).filter((n) => /^json\.log(\.\d+)?$/.test(n)).sort((a, b) => Number(b.split('.')[2] ?? 0) - Number(a.split('.')[2] ?? 0));
  return names.map((name) => {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    let output = 0;
    for (const line of text.split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as { log: string; stream: string; time: string };
      assert.deepEqual(Object.keys(e), ['log', 'stream', 'time']);
      assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      output += Buffer.byteLength(e.log, 'latin1');
    }
    return { name, output, size: Buffer.byteLength(text) };
  });
}

async function idOf(stack: Stack, name: string): Promise<string> {
  return (await stack.docker(['inspect', '-f', '{{.Id}}', name])).stdout.trim();
}

describe('log retention', () => {
  let stack: Stack;
  let small: Stack;
  before(async () => {
    stack = await startStackWithBusybox();
    small = await startStackWithBusybox({ STEVEDORE_LOG_MAX_SIZE: '65536', STEVEDORE_LOG_MAX_FILES: '3' });
  });
  after(async () => {
    await stopStack(stack);
    await stopStack(small);
  });

  test('by default a 50 MiB output of 50-byte lines comes back whole, in rotated json-file files', async () => {
    const run = await stack.docker(['run', '--name', 'big', 'busybox', 'sh', '-c', `yes ${LINE.trim()} | head -c ${OUTPUT}`], { timeoutMs: 120_000 });
    assert.equal(run.code, 0, run.stderr);
    const expected = createHash('md5');
    for (let i = 0; i < OUTPUT / LINE.length; i++) expected.update(LINE);
    expected.update(LINE.slice(0, OUTPUT % LINE.length));
    const env = { ...process.env, DOCKER_HOST: stack.dockerHost, DOCKER_CONFIG: stack.dockerConfig };
    const read = await runCommand('sh', ['-c', 'docker logs big | md5sum; docker logs big | wc -c'], { env, timeoutMs: 120_000 });
    const [sum, count] = read.stdout.trim().split('\n');
    assert.equal(Number(count), OUTPUT);
    assert.equal(sum.split(' ')[0], expected.digest('hex'));
    const files = logFiles(stack, await idOf(stack, 'big'));
    assert.ok(files.length >= 3, files.map((f) => f.name).join(' '));
    assert.equal(files.reduce((n, f) => n + f.output, 0), OUTPUT);
    for (const f of files) assert.ok(f.output <= 20 * 1024 * 1024, `${f.name}: ${f.output} bytes of output`);
  });

  test('every byte value, escaped or not, comes back from the log as it was written, on both streams, stamped or not', async () => {
    // All 256 byte values, then a line where escapes fall at every offset of an 8-byte word, then a long clean line.
    const bytes = Buffer.from([...Array(256).keys()]);
    const mixed = Array.from({ length: 64 }, (_, i) => `${'a'.repeat(i % 9)}"${'b'.repeat(i % 7)}\\\t`).join('');
    const script = [
      'i=0; while [ $i -lt 256 ]; do printf "\\\\$(printf %o $i)"; i=$((i+1)); done',
      `printf '%s\\n' '${mixed}'`,
      `printf '%s\\n' '${mixed}' >&2`,
      'head -c 100000 /dev/zero | tr "\\0" x; echo',
    ].join('; ');
    const run = await stack.docker(['run', '--name', 'bytes', 'busybox', 'sh', '-c', script]);
    assert.equal(run.code, 0, run.stderr);
    const env = { ...process.env, DOCKER_HOST: stack.dockerHost, DOCKER_CONFIG: stack.dockerConfig };
    const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
    const mixedLine = Buffer.from(`${mixed}\n`);
    const stdout = Buffer.concat([bytes, mixedLine, Buffer.from(`${'x'.repeat(100000)}\n`)]);
    const read = await runCommand('sh', ['-c', 'docker logs bytes 2>/dev/null | md5sum; docker logs bytes 2>&1 >/dev/null | md5sum'], { env });
    assert.deepEqual(read.stdout.trim().split('\n').map((l) => l.split(' ')[0]), [md5(stdout), md5(mixedLine)]);
    // Stamped (Docker 1.0's form at v1.12), each line after its stamp, the same bytes.
    const stamped = await stack.request('GET', `/v1.12/containers/bytes/logs?stderr=1&timestamps=1`);
    assert.equal(stamped.status, 200);
    assert.match(stamped.text.slice(8), /^\[[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}\] /);
    assert.equal(stamped.text.slice(8 + 22), mixedLine.toString());
  });

  test('settings: 64 KiB of output × 3 files keep the last 128 to 192 KiB; output of control bytes is bounded on disk at 3 times', async () => {
    assert.equal((await small.docker(['run', '--name', 'lines', 'busybox', 'sh', '-c', `yes ${LINE.trim()} | head -c 1048576`])).code, 0);
    const files = logFiles(small, await idOf(small, 'lines'));
    assert.deepEqual(files.map((f) => f.name), ['json.log.2', 'json.log.1', 'json.log']);
    for (const f of files) assert.ok(f.output <= 65536, `${f.name}: ${f.output}`);
    const kept = (await small.docker(['logs', 'lines'])).stdout.length;
    assert.ok(kept >= 128 * 1024 && kept <= 192 * 1024, `${kept} bytes kept`);

    // Every byte of this output is written as \u0001 (6 bytes): the file's size wins over its output.
    assert.equal((await small.docker(['run', '--name', 'escaped', 'busybox', 'sh', '-c', 'head -c 1048576 /dev/zero | tr "\\0" "\\1" | fold -w 1000'])).code, 0);
    for (const f of logFiles(small, await idOf(small, 'escaped'))) assert.ok(f.size <= 3 * 65536, `${f.name}: ${f.size} bytes on disk`);
  });
});
