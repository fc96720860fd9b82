import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineList, goJson, sortedDeep } from './json';

test('goJson escapes <, > and & (and the line separators) as Go did, and only inside strings', () => {
  assert.equal(goJson({ stream: ' ---> a&b <c>' }), '{"stream":" ---\\u003e a\\u0026b \\u003cc\\u003e"}');
  assert.equal(goJson({ s: 'x\u2028y' }), '{"s":"x\\u2028y"}');
  assert.equal(goJson([1, 'plain']), '[1,"plain"]');
  assert.deepEqual(JSON.parse(goJson({ a: '<&>' })), { a: '<&>' });
  // The check does not carry state from one call to the next.
  assert.equal(goJson('<'), '"\\u003c"');
  assert.equal(goJson('<'), '"\\u003c"');
});

test('engineList writes [{…}\\n,{…}\\n], an empty list as []', () => {
  assert.equal(engineList([{ a: 1 }, { b: '>' }]), '[{"a":1}\n,{"b":"\\u003e"}\n]');
  assert.equal(engineList([]), '[]');
  assert.deepEqual(JSON.parse(engineList([{ a: 1 }, { b: 2 }])), [{ a: 1 }, { b: 2 }]);
});

test('sortedDeep sorts keys at every depth, lists kept in order', () => {
  const out = sortedDeep({ b: { z: 1, a: [{ y: 1, x: 2 }] }, a: null });
  assert.deepEqual(Object.keys(out), ['a', 'b']);
  assert.deepEqual(Object.keys(out.b), ['a', 'z']);
  assert.deepEqual(Object.keys(out.b.a[0]), ['x', 'y']);
});
