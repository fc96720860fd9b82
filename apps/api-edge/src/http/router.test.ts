import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanPath, DockerRouter } from './router';
import { compilePath, gateRefuses, route, type VersionGate } from './route';
import { versionAbove, versionBelow } from '@stevedore/docker-api';

const noop = () => undefined;
const router = new DockerRouter([
  {
    domain: 't',
    routes: () => [
      route('GET', '/images/{name*}/json', noop, { since: '1.0' }),
      route('GET', '/containers/{id}/json', noop, { since: '1.0' }),
      route('GET', '/containers/json', noop, { since: '1.0' }),
      route('GET', '/containers/{id}/top', noop, { since: '1.3', gate: { below: '1.4', status: 500, message: 'old' } }),
    ],
  },
]);

test('image names keep their slashes and registry ports', () => {
  const r = router.resolve('GET', '/v1.12/images/localhost:5000/team/app:v2/json', '');
  assert.equal(r.kind, 'route');
  if (r.kind === 'route') assert.deepEqual(r.match.params, { name: 'localhost:5000/team/app:v2' });
});

test('a container id is one segment', () => {
  assert.equal(router.resolve('GET', '/containers/a/b/json', '').kind, 'notFound');
  const { pattern } = compilePath('/containers/{id}/json');
  assert.ok(pattern.test('/containers/abc/json'));
});

test('the version comes from the prefix, 1.12 without one, and newer ones are refused', () => {
  const r = router.resolve('GET', '/v1.5/containers/x/json', '');
  assert.ok(r.kind === 'route' && r.match.versionText === '1.5');
  const bare = router.resolve('GET', '/containers/x/json', '');
  assert.ok(bare.kind === 'route' && bare.match.versionText === '1.12');
  assert.deepEqual(router.resolve('GET', '/v1.13/containers/x/json', ''), { kind: 'versionTooNew', versionText: '1.13' });
  // An unknown route stays a plain 404 whatever the version.
  assert.equal(router.resolve('GET', '/v1.13/nothing', '').kind, 'notFound');
});

test('paths are cleaned as Go did, with a redirect', () => {
  assert.equal(cleanPath('//version'), '/version');
  assert.equal(cleanPath('/a/./b/../c'), '/a/c');
  assert.equal(cleanPath('/images/json/'), '/images/json/');
  assert.deepEqual(router.resolve('GET', '/v1.12//containers/x/json', '?a=1'), { kind: 'redirect', location: '/v1.12/containers/x/json?a=1' });
});

test('gates are strict comparisons: three-part versions fall where Docker 1.0 put them', () => {
  const at = (v: string) => ({ below: (b: string) => versionBelow(v, b), above: (a: string) => versionAbove(v, a) });
  const viz: VersionGate = { above: '1.6', status: 404, message: '' };
  const top: VersionGate = { below: '1.4', status: 500, message: '' };
  assert.deepEqual(['1.0', '1.6', '1.6.0', '1.6.1', '1.7', '1.12'].map((v) => gateRefuses(viz, at(v))), [false, false, false, true, true, true]);
  assert.deepEqual(['1.0', '1.3', '1.3.9', '1.4', '1.4.0', '1.12'].map((v) => gateRefuses(top, at(v))), [true, true, true, false, false, false]);
});

test('a route without parameters is found again from memory, per method and path, whatever the version', () => {
  const first = router.resolve('GET', '/v1.0/containers/json', '');
  const again = router.resolve('GET', '/v1.12/containers/json', '');
  assert.ok(first.kind === 'route' && again.kind === 'route');
  if (first.kind === 'route' && again.kind === 'route') {
    assert.equal(first.match.route, again.match.route);
    assert.deepEqual([first.match.versionText, again.match.versionText], ['1.0', '1.12']);
    assert.deepEqual(again.match.params, {});
  }
  assert.equal(router.resolve('POST', '/containers/json', '').kind, 'notFound', 'another method is not the remembered route');
  const inspect = router.resolve('GET', '/containers/abc/json', '');
  assert.ok(inspect.kind === 'route' && inspect.match.params.id === 'abc');
});

test('the remembered paths stay bounded and every version prefix is still checked', () => {
  for (let i = 0; i < 600; i++) {
    const r = router.resolve('GET', `/v1.${i}/containers/json`, '');
    assert.equal(r.kind, i <= 12 ? 'route' : 'versionTooNew', `v1.${i}`);
  }
  assert.equal(router.resolve('GET', '/v1.12/containers/json', '').kind, 'route');
  assert.equal(router.resolve('GET', '/v1.599/containers/json', '').kind, 'versionTooNew', 'a refusal is never remembered as a route');
  assert.equal(router.resolve('GET', '//containers/json', '?all=1').kind, 'redirect', 'an unclean path is redirected, not taken from memory');
  const a = router.resolve('GET', '/containers/a/json', '');
  const b = router.resolve('GET', '/containers/b/json', '');
  assert.ok(a.kind === 'route' && b.kind === 'route' && a.match.params.id === 'a' && b.match.params.id === 'b');
});
