import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLogger } from '@stevedore/logging';
import { ApiRequest } from './api-request';

const request = (query: string, version = '1.12') =>
  new ApiRequest({ headers: {} } as IncomingMessage, {} as ServerResponse, version, {}, query ? `?${query}` : '', 'test', createLogger('test', 'silent'));

test('booleans as Docker 1.0 read them: trimmed, any case; "", 0, no, false, none false; anything else true', () => {
  for (const v of ['', '0', 'no', 'false', 'none', 'FALSE', ' No ', 'None']) assert.equal(request(`all=${encodeURIComponent(v)}`).bool('all'), false, JSON.stringify(v));
  for (const v of ['1', 'true', 'yes', 'on', 'x', '2', 'TRUE', 'nope']) assert.equal(request(`all=${encodeURIComponent(v)}`).bool('all'), true, JSON.stringify(v));
  assert.equal(request('').bool('all'), false, 'absent: the fallback');
  assert.equal(request('').bool('rm', true), true);
  assert.equal(request('rm=').bool('rm', true), false, 'present and empty: false, whatever the fallback');
});

test('integers: absent or empty the fallback, a non-integer a 400 naming the parameter', () => {
  assert.equal(request('t=7').int('t', 10), 7);
  assert.equal(request('t=').int('t', 10), 10);
  assert.equal(request('').int('t', 10), 10);
  assert.throws(() => request('t=soon').int('t'), /Invalid value for t: "soon" is not an integer/);
});

test('Unix seconds: whole, or with a fraction truncated (never rounded up)', () => {
  assert.equal(request('since=1795792876').unixSeconds('since'), 1795792876);
  assert.equal(request('since=1795792876.999999999').unixSeconds('since'), 1795792876);
  assert.throws(() => request('since=yesterday').unixSeconds('since'), /not a Unix timestamp/);
});
