import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removalRules } from './build.handlers';

/** A request with a version and a query, as removalRules reads it. */
function req(version: string, query: string) {
  const q = new URLSearchParams(query);
  const [major, minor] = version.split('.').map(Number);
  return {
    query: q,
    atLeast: (v: string) => {
      const [a, b] = v.split('.').map(Number);
      return major > a || (major === a && minor >= b);
    },
    // ApiRequest.bool: absent is false; '', 0, no, false and none are false; the rest true.
    bool: (name: string) => q.get(name) !== null && !['', '0', 'no', 'false', 'none'].includes(q.get(name)!.trim().toLowerCase()),
  };
}

test('gate G7: the rm and forcerm defaults per version, as BUILDER.md tables them', () => {
  const cases: Array<[string, string, { rm: boolean; forcerm: boolean }]> = [
    ['1.12', '', { rm: true, forcerm: false }],
    ['1.12', 'rm=', { rm: true, forcerm: false }],
    ['1.12', 'rm=0', { rm: false, forcerm: false }],
    ['1.12', 'rm=false', { rm: false, forcerm: false }],
    ['1.12', 'rm=0&forcerm=1', { rm: true, forcerm: true }],
    ['1.12', 'rm=0&forcerm=true', { rm: false, forcerm: true }],
    ['1.11', '', { rm: false, forcerm: false }],
    ['1.11', 'rm=1', { rm: true, forcerm: false }],
    ['1.11', 'forcerm=1', { rm: false, forcerm: true }],
  ];
  for (const [version, query, expected] of cases) assert.deepEqual(removalRules(req(version, query)), expected, `v${version} ?${query}`);
});
