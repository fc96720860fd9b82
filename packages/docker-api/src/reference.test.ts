import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitRepoTag } from './reference';

test('a tag is what follows the last colon after the last slash', () => {
  assert.deepEqual(splitRepoTag('busybox'), { repo: 'busybox', tag: undefined });
  assert.deepEqual(splitRepoTag('busybox:1.36'), { repo: 'busybox', tag: '1.36' });
  assert.deepEqual(splitRepoTag('127.0.0.1:5000/team/app'), { repo: '127.0.0.1:5000/team/app', tag: undefined });
  assert.deepEqual(splitRepoTag('127.0.0.1:5000/team/app:v2'), { repo: '127.0.0.1:5000/team/app', tag: 'v2' });
  assert.deepEqual(splitRepoTag('app:'), { repo: 'app', tag: '' });
});
