import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LogLineReader } from './log-lines';

const reader = new LogLineReader();
const decodeLogLine = (line: Buffer, out: Buffer, at: number) => {
  const r = reader.decode(line, 0, line.length, out, at);
  return r && { stream: r.stream, length: r.length, time: r.time() };
};

/** A line as the monitor writes it (shim.c log_entry): `"` and `\` escaped, \n \r \t by name, other control bytes as \u00XX, the rest raw. */
function monitorLine(data: Buffer, stream: string, time: string): Buffer {
  const parts: number[] = [...Buffer.from('{"log":"')];
  for (const c of data) {
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) parts.push(c);
    else if (c === 0x22 || c === 0x5c) parts.push(0x5c, c);
    else if (c === 0x0a) parts.push(0x5c, 0x6e);
    else if (c === 0x0d) parts.push(0x5c, 0x72);
    else if (c === 0x09) parts.push(0x5c, 0x74);
    else parts.push(...Buffer.from(`\\u00${c.toString(16).padStart(2, '0')}`));
  }
  parts.push(...Buffer.from(`","stream":"${stream}","time":"${time}"}`));
  return Buffer.from(parts);
}

test('lines the monitor writes decode to the exact bytes it logged, every byte value included', () => {
  const time = '2026-12-04T03:24:37.123456789Z'; // 30 characters, as the monitor writes it
  const samples = [Buffer.from('hello\n'), Buffer.alloc(0), Buffer.from('quote " back \\ tab \t cr \r\n'), Buffer.from([...Array(256).keys()]), randomBytes(16 * 1024)];
  for (const data of samples) {
    for (const stream of ['stdout', 'stderr']) {
      const line = monitorLine(data, stream, time);
      const out = Buffer.alloc(line.length);
      const r = decodeLogLine(line, out, 0);
      assert.ok(r);
      assert.deepEqual(out.subarray(0, r.length), data);
      assert.deepEqual([r.stream, r.time], [stream === 'stdout' ? 1 : 2, time]);
    }
  }
});

test('lines of other writers (other key orders, escapes, non-ASCII) decode as JSON.parse reads them; a line that is not an entry is none', () => {
  const lines = [
    JSON.stringify({ stream: 'stderr', log: 'é ☃ 😀 \u2028\n', time: 't' }),
    JSON.stringify({ log: 'é ☃ 😀 \u0001\n', stream: 'stdout', time: 't' }).replace('é', '\\u00e9'),
    '{"log":"a\\/b\\u0041","stream":"stdout","time":"t"}',
    '{"log":"x","stream":"stdout","time":"t","attrs":{}}',
    // The monitor's shape around a log that holds a bare quote: another writer's line, read by JSON.parse.
    '{"log":"a","x":"b","stream":"stdout","time":"2026-12-04T03:24:37.123456789Z"}',
  ];
  for (const text of lines) {
    const line = Buffer.from(text);
    const out = Buffer.alloc(line.length);
    const r = decodeLogLine(line, out, 0);
    const e = JSON.parse(text) as { log: string; stream: string; time: string };
    assert.ok(r, text);
    assert.equal(out.subarray(0, r.length).toString('utf8'), e.log, text);
    assert.equal(r.stream, e.stream === 'stderr' ? 2 : 1);
  }
  for (const text of ['not json', '{"log":"unterminated', '{"stream":"stdout"}', '{"log":"x","stream":"stdin!","time":"t"}x']) {
    assert.equal(decodeLogLine(Buffer.from(text), Buffer.alloc(text.length + 8), 0), undefined, text);
  }
});
