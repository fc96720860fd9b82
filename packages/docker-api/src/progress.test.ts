import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanSize, jsonMessage, progressText, textMessage } from './progress';

test('sizes as Docker printed them', () => {
  assert.equal(humanSize(2433303), '2.433 MB');
  assert.equal(humanSize(524288), '524.3 kB');
  assert.equal(humanSize(512), '512 B');
});

test('the progress bar', () => {
  // As STREAMS.md §5.3 shows it: `%8v` pads short sizes only.
  assert.equal(progressText(524288, 2433303, 0), `[==========>${' '.repeat(40)}] 524.3 kB/2.433 MB`);
  assert.equal(progressText(10, 10, 0), `[${'='.repeat(50)}>]     10 B/10 B`);
  assert.match(progressText(500, 1000, 100, 110), / 10s$/);
});

test('JSON messages and their separators', () => {
  assert.equal(jsonMessage({ status: 'Pulling repository busybox' }), '{"status":"Pulling repository busybox"}\r\n');
  assert.equal(jsonMessage({ status: 'Download complete', id: '511136ea3c5a', perLayer: true }), '{"status":"Download complete","progressDetail":{},"id":"511136ea3c5a"}');
  assert.equal(jsonMessage({ error: 'HTTP code: 404' }), '{"errorDetail":{"message":"HTTP code: 404"},"error":"HTTP code: 404"}\r\n');
  assert.equal(jsonMessage({ stream: ' ---> abc\n' }), '{"stream":" ---\\u003e abc\\n"}\r\n');
});

test('text messages for v1.0', () => {
  assert.equal(textMessage({ status: 'Importing' }), 'Importing\r\n');
  assert.equal(textMessage({ error: 'boom' }), 'Error: boom\r\n');
  assert.equal(textMessage({ status: 'Downloading', perLayer: true }), 'Downloading \r\n');
});
