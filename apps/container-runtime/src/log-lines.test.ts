import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stampMilli } from './container-logs';
import { DecodeState, Stop, parseLine } from './log-lines';

const TIME = '2026-12-04T03:24:37.123456789Z'; // 30 characters, as the monitor writes it
const ALL = { stdout: true, stderr: true, timestamps: false };

/** A line as the monitor writes it (shim.c log_entry): `"` and `\` escaped, \n \r \t by name, other control bytes as \u00XX, the rest raw. */
function monitorLine(data: Buffer, stream: string, time = TIME): Buffer {
  const parts: number[] = [...Buffer.from('{"log":"')];
  for (const c of data) {
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) parts.push(c);
    else if (c === 0x22 || c === 0x5c) parts.push(0x5c, c);
    else if (c === 0x0a) parts.push(0x5c, 0x6e);
    else if (c === 0x0d) parts.push(0x5c, 0x72);
    else if (c === 0x09) parts.push(0x5c, 0x74);
    else parts.push(...Buffer.from(`\\u00${c.toString(16).padStart(2, '0')}`));
  }
  parts.push(...Buffer.from(`","stream":"${stream}","time":"${time}"}\n`));
  return Buffer.from(parts);
}

/** Decodes `src` whole into a buffer as long as it; the state and the output. */
function decodeAll(src: Buffer, wanted = ALL, out = Buffer.alloc(src.length + 64), stream = 0) {
  const s = new DecodeState();
  s.stream = stream;
  s.decode(src, 0, src.length, out, 0, wanted);
  return { s, out: out.subarray(0, s.outEnd) };
}

test('lines the monitor writes decode to the exact bytes it logged, every byte value included', () => {
  const samples = [Buffer.from('hello\n'), Buffer.alloc(0), Buffer.from('quote " back \\ tab \t cr \r\n'), Buffer.from([...Array(256).keys()]), randomBytes(16 * 1024)];
  for (const data of samples) {
    for (const stream of ['stdout', 'stderr']) {
      const { s, out } = decodeAll(monitorLine(data, stream));
      assert.deepEqual([s.stop, s.stream], [Stop.ended, stream === 'stdout' ? 1 : 2]);
      assert.deepEqual(out, data);
    }
  }
});

test('lines are taken while they are of one stream, filtered and stamped as asked, and only whole ones', () => {
  const a = monitorLine(Buffer.from('a\n'), 'stdout');
  const b = monitorLine(Buffer.from('b\n'), 'stderr', '2026-01-05T23:59:58.999999999Z');
  const src = Buffer.concat([a, a, Buffer.from('\n'), b, a, a.subarray(0, 20)]);
  let r = decodeAll(src);
  assert.deepEqual([r.s.stop, r.s.stream, r.out.toString(), r.s.position], [Stop.switched, 1, 'a\na\n', 2 * a.length + 1]);
  r = decodeAll(src, { stdout: false, stderr: true, timestamps: true });
  assert.deepEqual([r.s.stop, r.s.stream, r.out.toString(), r.s.position], [Stop.ended, 2, '[Jan  5 23:59:58.999] b\n', src.length - 20]);
  assert.equal(`[${stampMilli('2026-01-05T23:59:58.999999999Z')}] `, '[Jan  5 23:59:58.999] ');
  // A batch already of stderr stops at the first stdout line; one with no room stops before the line.
  assert.deepEqual([decodeAll(a, ALL, undefined, 2).s.stop, decodeAll(a, ALL, undefined, 2).s.outEnd], [Stop.switched, 0]);
  assert.deepEqual([decodeAll(a, ALL, Buffer.alloc(a.length - 2)).s.stop, decodeAll(a, ALL, Buffer.alloc(a.length - 1)).s.stop], [Stop.full, Stop.ended]);
});

test('lines of other writers (other key orders, escapes, non-ASCII, times) stop the decode, and read as JSON.parse reads them', () => {
  const lines = [
    JSON.stringify({ stream: 'stderr', log: 'é ☃ 😀 \u2028\n', time: 't' }),
    JSON.stringify({ log: 'é ☃ 😀 \u0001\n', stream: 'stdout', time: 't' }).replace('é', '\\u00e9'),
    '{"log":"a\\/b\\u0041","stream":"stdout","time":"t"}',
    '{"log":"x","stream":"stdout","time":"t","attrs":{}}',
    // The monitor's shape around a log that holds a bare quote, one with \u0080 and one with a time in another shape.
    `{"log":"a","x":"b","stream":"stdout","time":"${TIME}"}`,
    `{"log":"\\u0080","stream":"stdout","time":"${TIME}"}`,
    `{"log":"x","stream":"stdout","time":"${TIME.replace('Z', '+')}"}`,
  ];
  for (const text of lines) {
    const src = Buffer.from(`${monitorLine(Buffer.from('before'), 'stdout').toString('latin1')}${text}\n`, 'latin1');
    const { s, out } = decodeAll(src, { ...ALL, timestamps: text.endsWith('+"}') });
    assert.equal(s.stop, Stop.other, text);
    assert.equal(out.toString('latin1').slice(-6), 'before', text);
    const e = JSON.parse(text) as { log: string; stream: string; time: string };
    assert.deepEqual(parseLine(text), { log: e.log, stream: e.stream === 'stderr' ? 2 : 1, time: e.time });
  }
  for (const text of ['not json', '{"log":"unterminated', '{"stream":"stdout"}', 'null']) assert.equal(parseLine(text), undefined, text);
});

test('hostile bytes never read or write past the buffers, and whatever decodes agrees with JSON.parse', () => {
  const base = monitorLine(Buffer.from('some "output" \\ here\t\u0001'), 'stdout');
  let compared = 0;
  for (let i = 0; i < 20000; i++) {
    const line = Buffer.from(base);
    // Mutations of a valid line (bytes changed, cut short), or plain noise with newlines in it.
    if (i % 4 === 0) randomBytes(line.length).copy(line);
    for (let k = 0; k < 1 + (i % 3); k++) line[Math.floor(Math.random() * line.length)] = [0x22, 0x5c, 0x0a, 0x75, 0x30, 0x7d, Math.floor(Math.random() * 256)][k % 7];
    const src = line.subarray(0, line.length - (i % 5 === 0 ? Math.floor(Math.random() * 10) : 0));
    const out = Buffer.alloc(src.length);
    const s = new DecodeState();
    s.decode(src, 0, src.length, out, 0, { stdout: true, stderr: true, timestamps: false });
    assert.ok(s.position >= 0 && s.position <= src.length && s.outEnd >= 0 && s.outEnd <= out.length);
    const text = src.subarray(0, src.indexOf(0x0a)).toString('latin1');
    // (Raw control bytes, which JSON.parse refuses, are passed through.)
    if (s.stop !== Stop.other && text && s.position === text.length + 1 && !/[\x00-\x1f]/.test(text)) {
      const e = JSON.parse(text) as { log: string };
      assert.equal(out.subarray(0, s.outEnd).toString('latin1'), e.log, text);
      compared++;
    }
  }
  assert.ok(compared > 300, `${compared} mutated lines decoded`);
  assert.throws(() => new DecodeState().decode(base, 0, base.length + 1, Buffer.alloc(10), 0, ALL), RangeError);
  assert.throws(() => new DecodeState().decode(base, 0, base.length, Buffer.alloc(10), 11, ALL), RangeError);
});
