import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareLogIds, decodeEventEntry, logIdTimeMs } from './event-log';

test('log IDs order by time, then sequence, whatever their length', () => {
  assert.ok(compareLogIds('999-5', '1000-0') < 0);
  assert.ok(compareLogIds('1000-10', '1000-9') > 0);
  assert.equal(compareLogIds('1000-3', '1000-3'), 0);
});

test('an entry decodes back into the event that was appended', () => {
  const e = decodeEventEntry('1732723123456-2', ['type', 'container', 'action', 'die', 'id', 'abc', 'from', 'busybox', 'attrs', '{"exitCode":"3"}']);
  assert.deepEqual(e, {
    logId: '1732723123456-2', timeMs: 1732723123456, type: 'container', action: 'die', id: 'abc', from: 'busybox',
    attributes: { exitCode: '3' },
  });
  assert.equal(logIdTimeMs('17-0'), 17);
});
