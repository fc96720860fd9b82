import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSignal } from './signals';

test('signals by name, with or without SIG and in any case, or by number; SIGKILL when none is named', () => {
  assert.equal(parseSignal(''), 9);
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('sigterm'), 15);
  assert.equal(parseSignal('SIGHUP'), 1);
  assert.equal(parseSignal('usr1'), 10);
  assert.equal(parseSignal('31'), 31);
  for (const bad of ['0', '32', 'SIGNOPE', '-9', '9x']) assert.throws(() => parseSignal(bad), new RegExp(`Invalid signal: ${bad}`));
});
