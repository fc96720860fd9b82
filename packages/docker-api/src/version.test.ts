import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareApiVersions, parseApiVersion } from './version';

test('versions compare component-wise as integers', () => {
  assert.equal(compareApiVersions('1.10', '1.9'), 1);
  assert.equal(compareApiVersions('1.012', '1.12'), 0);
  assert.equal(compareApiVersions('1.12.0', '1.12'), 0);
  assert.equal(compareApiVersions('1.120', '1.12'), 1);
  assert.equal(compareApiVersions('0.5', '1.0'), -1);
  assert.deepEqual(parseApiVersion('1.x'), [1, 0]);
});
